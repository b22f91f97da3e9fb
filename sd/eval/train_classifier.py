"""Train the attribute classifier on fresh renders: `python -m sd.eval.train_classifier`.

Every epoch draws new scenes from the generator (rendering is ~0.3 ms an image, so data is free), with
the held-out colour-shape pairs included in proportion to their share of all combinations: the judge
must recognise a green circle even though the diffusion model never saw one, and must not favour it.
Mild augmentation (blur, noise, a small colour jitter far below the gap between any two colour names)
makes it robust to the soft, slightly off images a generative model makes. It ends by showing the
accuracy of each head on renders from seeds never used in training, clean and blurred.

Seeds: training epochs use TRAIN_SEED + epoch; the accuracy table uses EVAL_SEED; tests use others below
TRAIN_SEED. None overlap, so every score is on scenes the classifier has not seen.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sd.data.dataset import combinations, generate
from sd.eval.classifier import ATTRIBUTES, ShapesClassifier, images_to_tensor, save_classifier, scene_labels
from sd.paths import CLASSIFIER_PATH, REPO_ROOT

TRAIN_SEED = 10_000
EVAL_SEED = 1
BLUR_SIGMA = 1.0  # the "blurred" column of the table: a softer image than any training render


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image (B, C, H, W) with its own Gaussian sigma (B,) in pixels; sigma 0 leaves it as is."""
    radius = 4
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)  # (K,)
    safe = sigma.clamp(min=1e-3)[:, None]
    kernel = torch.exp(-0.5 * (offsets[None] / safe) ** 2)  # (B, K)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    b, c, h, w = images.shape
    weights = kernel.repeat_interleave(c, dim=0)  # (B*C, K): one kernel per channel of each image
    x = F.pad(images.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, weights[:, None, None, :], groups=b * c)  # along width
    x = F.conv2d(x, weights[:, None, :, None], groups=b * c)  # along height
    return x.reshape(b, c, h, w)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random blur (sigma up to 1.3 px, 80% of images), noise (std up to 0.06) and per-channel gain/offset
    (+-6%, +-0.05 in [-1, 1] units, i.e. about +-7/255): colours stay nearer their own name than any other."""
    b = images.shape[0]

    def uniform(*shape: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=generator)

    sigma = uniform(b, low=0.0, high=1.3) * (torch.rand(b, generator=generator) < 0.8)
    x = gaussian_blur(images, sigma)
    x = x * uniform(b, 3, 1, 1, low=0.94, high=1.06) + uniform(b, 3, 1, 1, low=-0.05, high=0.05)
    x = x + uniform(b, 1, 1, 1, low=0.0, high=0.06) * torch.randn(x.shape, generator=generator)
    return x.clamp(-1.0, 1.0)


def held_out_share() -> float:
    """The held-out combinations' share of all of them, so each colour-shape pair is equally common."""
    n_out, n_in = len(combinations(True)), len(combinations(False))
    return n_out / (n_in + n_out)


def epoch_data(n: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`n` fresh renders (held-in and held-out combinations together) and their labels, shuffled."""
    n_out = round(n * held_out_share())
    parts = [generate(n - n_out, seed, held_out=False), generate(n_out, seed, held_out=True)]
    images = images_to_tensor(np.concatenate([p.images for p in parts]))
    labels = scene_labels([s for p in parts for s in p.scenes])
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return images[order], {k: v[order] for k, v in labels.items()}


def train(
    epochs: int = 16, per_epoch: int = 6144, batch_size: int = 64, lr: float = 3e-3, progress: bool = True
) -> tuple[ShapesClassifier, dict[str, list[tuple[int, float]]]]:
    """A classifier trained on `epochs` x `per_epoch` fresh renders (one-cycle LR), and its loss history."""
    torch.manual_seed(TRAIN_SEED)
    model = ShapesClassifier()
    steps_per_epoch = math.ceil(per_epoch / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(TRAIN_SEED)
    history: dict[str, list[tuple[int, float]]] = {"train (mean of 20 steps)": []}
    step, window = 0, []
    bar = tqdm(total=epochs * steps_per_epoch, desc="training classifier", disable=not progress)
    for epoch in range(epochs):
        model.train()
        images, labels = epoch_data(per_epoch, TRAIN_SEED + epoch)
        for start in range(0, per_epoch, batch_size):
            x = augment(images[start : start + batch_size], generator)
            logits = model(x)
            loss = sum(F.cross_entropy(logits[k], labels[k][start : start + batch_size]) for k in ATTRIBUTES)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            window.append(loss.item())
            if len(window) == 20:
                history["train (mean of 20 steps)"].append((step, sum(window) / len(window)))
                window = []
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}")
    bar.close()
    if window:
        history["train (mean of 20 steps)"].append((step, sum(window) / len(window)))
    return model.eval(), history


@torch.no_grad()
def accuracy_on_renders(
    model: ShapesClassifier, n: int, seed: int, held_out: bool, blur_sigma: float = 0.0
) -> dict[str, float]:
    """Each head's accuracy on `n` fresh renders of held-in or held-out combinations, optionally blurred."""
    model.eval()
    data = generate(n, seed, held_out=held_out)
    labels = scene_labels(data.scenes)
    correct = {k: 0 for k in ATTRIBUTES}
    for start in range(0, n, 500):
        x = images_to_tensor(data.images[start : start + 500])
        if blur_sigma > 0:
            x = gaussian_blur(x, torch.full((x.shape[0],), blur_sigma))
        for k, logits in model(x).items():
            correct[k] += int((logits.argmax(dim=1) == labels[k][start : start + 500]).sum())
    return {k: v / n for k, v in correct.items()}


def accuracy_table(model: ShapesClassifier, n_in: int, n_out: int, seed: int = EVAL_SEED) -> tuple[str, float]:
    """A markdown table of per-head accuracy (held-in/held-out x clean/blurred) and its lowest entry."""
    columns = {
        f"held-in clean (n={n_in})": accuracy_on_renders(model, n_in, seed, False),
        f"held-out clean (n={n_out})": accuracy_on_renders(model, n_out, seed, True),
        f"held-in blur {BLUR_SIGMA:g}px": accuracy_on_renders(model, n_in, seed, False, BLUR_SIGMA),
        f"held-out blur {BLUR_SIGMA:g}px": accuracy_on_renders(model, n_out, seed, True, BLUR_SIGMA),
    }
    lines = ["| attribute | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for k in ATTRIBUTES:
        lines.append(f"| {k} | " + " | ".join(f"{c[k]:.2%}" for c in columns.values()) + " |")
    return "\n".join(lines), min(v for c in columns.values() for v in c.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sd.eval.train_classifier", description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=16, help="epochs of fresh renders (default 16)")
    parser.add_argument("--per-epoch", type=int, default=6144, help="renders per epoch (default 6144)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak one-cycle learning rate")
    parser.add_argument("--out", type=Path, default=CLASSIFIER_PATH, help="weights file to write")
    parser.add_argument("--curve", type=Path, default=REPO_ROOT / "outputs/classifier/loss.png")
    parser.add_argument("--eval-held-in", type=int, default=2000, help="fresh held-in renders to score")
    parser.add_argument("--eval-held-out", type=int, default=1000, help="fresh held-out renders to score")
    parser.add_argument("--eval-only", action="store_true", help="score the classifier at --out, no training")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: these small convs gain little from more, and threads that compete "
        "with another job for the cores run ~10x slower)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from sd.atomic_output import atomic_output
    from sd.eval.classifier import load_classifier
    from sd.train.curves import plot_curves

    if args.eval_only:
        model = load_classifier(args.out)
    else:
        start = time.perf_counter()
        model, history = train(args.epochs, args.per_epoch, args.batch_size, args.lr)
        minutes = (time.perf_counter() - start) / 60
        params = sum(p.numel() for p in model.parameters())
        print(f"trained {params:,} params on {args.epochs * args.per_epoch:,} renders in {minutes:.1f} min")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        notes = {"trained_on": f"{args.epochs}x{args.per_epoch} renders, seeds {TRAIN_SEED}+epoch"}
        with atomic_output(args.out, overwrite=True) as tmp:
            save_classifier(model, tmp, notes)
        args.curve.parent.mkdir(parents=True, exist_ok=True)
        plot_curves(history, args.curve, "attribute classifier: summed cross-entropy of the five heads")
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {args.curve}")
    table, worst = accuracy_table(model, args.eval_held_in, args.eval_held_out)
    print(f"\naccuracy on fresh renders (seed {EVAL_SEED}, never used in training):\n{table}")
    print(f"lowest: {worst:.2%} ({'meets' if worst >= 0.99 else 'MISSES'} the 99% bar)")
    return 0 if worst >= 0.99 else 1


if __name__ == "__main__":
    raise SystemExit(main())
