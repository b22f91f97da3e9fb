"""Denoising loss of trained shapes models on the held-out batch, optionally with their attention swapped.

    python -m sd.eval.denoising_loss weights/tiny-shapes.safetensors [--attention relu] [--samples 256]

The stage-2 objective, || eps - eps_theta(z_t, t, text) ||^2, on `sd.eval.held_out`'s fixed batch (fresh
renders from a seed the training data never used, fixed noise, timesteps spread evenly over the schedule,
every 10th caption empty): the same inputs for every model, and the same yardstick as pruning's sensitivities,
so two models (or one model with softmax and with ReLU attention) are compared on exactly the same inputs.
This is how the ReLU conversion is measured: the shipped softmax model, the same weights with ReLU attention
(no training), and after `python -m sd.train.text_to_image --init ... --attention relu` fine-tuning.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from sd.eval.held_out import HELD_OUT_SEED, denoising_loss, held_out_batch
from sd.loading.checkpoint import load_checkpoint
from unet.model import UNetModel


def with_attention(unet: UNetModel, kind: str) -> UNetModel:
    """The same weights in a UNet whose attention is `kind` (softmax or relu): no parameters change."""
    if unet.config.attention == kind:
        return unet
    other = UNetModel(replace(unet.config, attention=kind)).to(next(unet.parameters()).dtype)
    other.load_state_dict(unet.state_dict())
    return other.eval()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sd.eval.denoising_loss", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--attention", choices=["softmax", "relu"], default=None, help="evaluate with this attention")
    p.add_argument("--samples", type=int, default=256, help="held-out samples (pruning's sensitivities use 256)")
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="seed of the held-out renders and noise")
    args = p.parse_args(argv)
    for path in args.checkpoints:
        ckpt = load_checkpoint(path, dtype="fp32")
        unet = with_attention(ckpt.unet, args.attention) if args.attention else ckpt.unet
        loss = denoising_loss(unet, held_out_batch(ckpt, args.samples, args.seed))
        record = {"checkpoint": str(path), "attention": unet.config.attention, "samples": args.samples}
        print(json.dumps(record | {"seed": args.seed, "loss": round(loss, 5)}))


if __name__ == "__main__":
    main()
