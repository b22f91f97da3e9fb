"""Denoising loss of a trained shapes model on fresh images, optionally with its attention swapped.

    python -m sd.eval.denoising_loss weights/tiny-shapes.safetensors [--attention relu] [--samples 512]

The stage-2 objective, || eps - eps_theta(z_t, t, text) ||^2, averaged over `--samples` fresh renders
(a seed the training data never used), each at `--repeats` fixed (t, noise) draws, so two models (or one
model with softmax and with ReLU attention) are compared on exactly the same inputs. This is how the ReLU
conversion is measured: the shipped softmax model, the same weights with ReLU attention (no training),
and after `python -m sd.train.text_to_image --init ... --attention relu` fine-tuning.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from sd.data.dataset import generate
from sd.loading.checkpoint import Checkpoint, load_checkpoint
from sd.schedule import SD15_SCHEDULE
from unet.model import UNetModel


def with_attention(unet: UNetModel, kind: str) -> UNetModel:
    """The same weights in a UNet whose attention is `kind` (softmax or relu): no parameters change."""
    if unet.config.attention == kind:
        return unet
    other = UNetModel(replace(unet.config, attention=kind)).to(next(unet.parameters()).dtype)
    other.load_state_dict(unet.state_dict())
    return other.eval()


@torch.no_grad()
def denoising_loss(checkpoint: Checkpoint, attention: str | None = None, samples: int = 512, repeats: int = 4,
                   seed: int = 777, batch: int = 128) -> float:  # fmt: skip
    """Mean denoising MSE over fresh captioned renders, fixed (t, noise) per sample and repeat."""
    unet = with_attention(checkpoint.unet, attention) if attention else checkpoint.unet
    data = generate(samples, seed)
    ids = checkpoint.tokenizer(data.captions)  # (N, 77)
    gen = torch.Generator().manual_seed(seed)
    alphas = SD15_SCHEDULE.alphas_cumprod
    total, count = 0.0, 0
    for i in range(0, samples, batch):
        x = torch.from_numpy(data.images[i : i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (b, 3, 64, 64)
        z0 = checkpoint.vae.encode(x).mean * checkpoint.vae.config.scaling_factor  # (b, 4, 8, 8)
        context = checkpoint.text_encoder(ids[i : i + batch])  # (b, 77, C)
        for _ in range(repeats):
            t = torch.randint(0, SD15_SCHEDULE.num_train_timesteps, (len(z0),), generator=gen)  # (b,)
            noise = torch.randn(z0.shape, generator=gen)  # (b, 4, 8, 8)
            a = alphas[t][:, None, None, None]
            z_t = a.sqrt() * z0 + (1 - a).sqrt() * noise  # q(z_t | z_0)
            total += F.mse_loss(unet(z_t, t, context), noise, reduction="sum").item()
            count += noise.numel()
    return total / count


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sd.eval.denoising_loss", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--attention", choices=["softmax", "relu"], default=None, help="evaluate with this attention")
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--repeats", type=int, default=4)
    args = p.parse_args(argv)
    for path in args.checkpoints:
        ckpt = load_checkpoint(path, dtype="fp32")
        loss = denoising_loss(ckpt, args.attention, args.samples, args.repeats)
        kind = args.attention or ckpt.unet.config.attention
        print(json.dumps({"checkpoint": str(path), "attention": kind, "samples": args.samples, "loss": round(loss, 5)}))


if __name__ == "__main__":
    main()
