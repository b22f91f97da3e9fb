"""Train the original U-Net to segment the generated shapes, and measure it on held-out images.

    python -m unet.segmentation.train --out outputs/edu/unet            # ~1 CPU-minute (47 s at 1 thread)

Per-pixel softmax cross-entropy with the shape's pixels weighted up (the paper's weight map balances class
frequencies too; its extra weight on borders between touching cells has nothing to do here), Adam. Writes to
--out: loss.png, overlays.png (held-out images, predictions; red = missed, blue = false shape), metrics.json
and model.safetensors (fp16 with its config; `--weights` also copies it elsewhere, e.g.
weights/unet-segmentation.safetensors, which the notebook and a test use). Same seed -> same numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from sd.train.curves import plot_curves
from sd.train.lr_schedule import warmup_cosine
from sd.train.run_record import RunClock, save_run
from unet.segmentation.data import held_out_data, segmentation_data
from unet.segmentation.iou import foreground_iou, mean_iou
from unet.segmentation.model import SegmentationUNet, SegmentationUNetConfig
from unet.segmentation.overlays import overlay


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m unet.segmentation.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("outputs/edu/unet"))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--eval-size", type=int, default=200)
    p.add_argument("--base-channels", type=int, default=8)
    p.add_argument("--shape-weight", type=float, default=3.0, help="loss weight of shape pixels (background: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", type=Path, default=None, help="also write the trained weights here")
    return p.parse_args(argv)


def loss_fn(model: SegmentationUNet, x: torch.Tensor, mask: torch.Tensor, shape_weight: float = 1.0) -> torch.Tensor:
    """Weighted cross-entropy; the paper also weights classes, since one (here the background) dominates."""
    weight = torch.tensor([1.0, shape_weight])
    return F.cross_entropy(model(x), mask, weight=weight)  # logits (B, 2, 64, 64) vs classes (B, 64, 64)


@torch.no_grad()
def predict(model: SegmentationUNet, x: torch.Tensor, batch: int = 100) -> torch.Tensor:
    """(N, 64, 64) class per pixel: the argmax of the logits."""
    return torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])


def evaluate(model: SegmentationUNet, x: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    model.eval()
    pred = predict(model, x)
    model.train()
    return {"foreground_iou": foreground_iou(pred, mask).mean().item(), "mean_iou": mean_iou(pred, mask)}


def train(args: argparse.Namespace) -> dict:
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    config = SegmentationUNetConfig(base_channels=args.base_channels)
    model = SegmentationUNet(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    x, mask = segmentation_data(args.train_size, args.seed)
    x_val, mask_val = held_out_data(args.eval_size, args.seed)
    history: dict[str, list] = {"train": []}
    gen = torch.Generator().manual_seed(args.seed)
    clock = RunClock()
    bar = tqdm(range(args.steps), desc="u-net")
    for step in bar:
        idx = torch.randint(len(x), (args.batch,), generator=gen)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, args.steps, args.lr, max_warmup=50)
        loss = loss_fn(model, x[idx], mask[idx], args.shape_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history["train"].append((step, loss.item()))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    facts = clock.facts(model, args.steps, args.batch)
    metrics = {**evaluate(model, x_val, mask_val), "eval_images": len(x_val), "final_loss": history["train"][-1][1],
               **facts}  # fmt: skip
    plot_curves(history, args.out / "loss.png", "U-Net segmentation: cross-entropy per pixel")
    model.eval()
    grid = overlay(x_val[:16], predict(model, x_val[:16]), mask_val[:16])
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(args.out / "overlays.png")
    save_run(model, config, metrics, args.out, args.weights)
    return {"model": model, "metrics": metrics, "history": history}


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
