"""Train a plain VAE on the generated shapes by maximising the ELBO, and draw what it learned.

    python -m vae.plain.train --out outputs/edu/vae        # ~4 CPU-minutes (239 s at 1 thread)

(The classic exercise trains on CelebA faces, which cannot be downloaded here; the generated shapes have the
same role: images with a few underlying factors, here shape, colour, background, size and position.)
Adam on -ELBO per image (nats, Bernoulli decoder). Writes loss.png (-ELBO and its two terms), reconstructions.png,
samples.png (decoded z ~ N(0, I)), traversal.png (one row per most-used latent dimension, swept over
[-3, 3]), metrics.json (held-out -ELBO, reconstruction and KL in nats per image) and model.safetensors (fp16 +
config; `--weights` copies it elsewhere). Same seed -> same numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm

from sd.data.dataset import generate
from sd.train.curves import plot_curves
from sd.train.run_record import RunClock, save_run
from vae.plain.model import PlainVAE, PlainVAEConfig, negative_elbo, reconstruction_floor
from vae.plain.plots import most_used_dimensions, prior_samples, reconstructions, traversal


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vae.plain.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("outputs/edu/vae"))
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--train-size", type=int, default=10000)
    p.add_argument("--eval-size", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", type=Path, default=None, help="also write the trained weights here")
    return p.parse_args(argv)


def images(n: int, seed: int) -> torch.Tensor:
    """(n, 3, 64, 64) rendered shapes in [0, 1]."""
    return torch.from_numpy(generate(n, seed).images).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def evaluate(model: PlainVAE, x: torch.Tensor, seed: int) -> dict[str, float]:
    """Held-out -ELBO and its terms, nats per image, one posterior sample per image (seeded)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    terms = [negative_elbo(model, x[i : i + 250], gen) for i in range(0, len(x), 250)]
    model.train()
    weights = [min(250, len(x) - i) / len(x) for i in range(0, len(x), 250)]
    out = {f"{k}_nats": sum(w * t[k].item() for w, t in zip(weights, terms, strict=True)) for k in terms[0]}
    return {**out, "reconstruction_floor_nats": reconstruction_floor(x).mean().item()}


def save_png(grid, path: Path, scale: int = 2) -> None:
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(path)


def train(args: argparse.Namespace) -> dict:
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    config = PlainVAEConfig(latent_dim=args.latent_dim)
    model = PlainVAE(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    x, x_val = images(args.train_size, args.seed), images(args.eval_size, 10_000 + args.seed)
    history: dict[str, list] = {"train": [], "reconstruction": [], "kl": []}
    gen = torch.Generator().manual_seed(args.seed)
    clock = RunClock()
    bar = tqdm(range(args.steps), desc="vae")
    for step in bar:
        idx = torch.randint(len(x), (args.batch,), generator=gen)
        for group in optimizer.param_groups:  # constant, then down to 10% over the last third
            group["lr"] = args.lr * min(1.0, 0.1 + 0.9 * 3 * (args.steps - step) / args.steps)
        terms = negative_elbo(model, x[idx], gen)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        for name, key in (("train", "loss"), ("reconstruction", "reconstruction"), ("kl", "kl")):
            history[name].append((step, terms[key].item()))
        if step % 10 == 0:
            bar.set_postfix(elbo=f"{-terms['loss'].item():.1f}", kl=f"{terms['kl'].item():.1f}")
    facts = clock.facts(model, args.steps, args.batch)
    held_out = evaluate(model, x_val, args.seed)
    metrics = {"held_out": held_out, "held_out_elbo_nats": -held_out["loss_nats"], "eval_images": len(x_val), **facts}
    plot_curves(history, args.out / "loss.png", "plain VAE: -ELBO = reconstruction + KL (nats per image)")
    model.eval()
    save_png(reconstructions(model, x_val[:10]), args.out / "reconstructions.png")
    save_png(prior_samples(model, 32, seed=args.seed), args.out / "samples.png")
    save_png(traversal(model, x_val[:1], most_used_dimensions(model, x_val, 6)), args.out / "traversal.png")
    save_run(model, config, metrics, args.out, args.weights)
    return {"model": model, "metrics": metrics, "history": history}


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
