"""`python -m sd inspect CHECKPOINT`: what a checkpoint holds, or one line saying why it cannot load."""

from __future__ import annotations

import argparse
import dataclasses

from sd.cli.model_option import PREDICTION_HELP
from sd.loading.dtype_names import DTYPE_NAMES
from sd.samplers.base import PREDICTION_TYPES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="load a checkpoint and print its components, configs and parameter counts",
        description="Load an SD 1.x or 2.x checkpoint (original .safetensors/.ckpt file or diffusers folder) "
        "and print what it holds. Unsupported or broken files get a one-line reason.",
    )
    parser.add_argument("checkpoint", help="a .safetensors or .ckpt file, or a diffusers folder")
    parser.add_argument(
        "--dtype", choices=list(DTYPE_NAMES), default="fp32", help="dtype to load in (default fp32)"
    )
    parser.add_argument("--prediction-type", choices=PREDICTION_TYPES, help=PREDICTION_HELP)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sd.loading.checkpoint import load_checkpoint  # torch: imported once the arguments have parsed

    checkpoint = load_checkpoint(args.checkpoint, args.dtype, args.prediction_type)
    print(f"{checkpoint.name}: {checkpoint.family}, predicts {checkpoint.prediction_type}, loaded in {args.dtype}")
    for name in ("text_encoder", "vae", "unet"):
        module = getattr(checkpoint, name)
        params = sum(p.numel() for p in module.parameters())
        fields = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(module.config).items())
        print(f"  {name:<12} {params / 1e6:8.2f}M params  {type(module).__name__}({fields})")
    print(f"  tokenizer    {checkpoint.tokenizer.vocab_size} tokens, pad id {checkpoint.tokenizer.pad_id}")
    print(f"  schedule     {checkpoint.schedule}")
    return 0
