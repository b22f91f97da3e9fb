"""`--model NAME`: a shipped model by name (weights/NAME.safetensors) instead of a --checkpoint path."""

from __future__ import annotations

import argparse

from sd.errors import UserError
from sd.paths import SHIPPED_MODELS


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=list(SHIPPED_MODELS), help="a shipped model instead of --checkpoint")


def apply_model_option(args: argparse.Namespace) -> None:
    """Turn --model into --checkpoint (the commands then treat both alike)."""
    if args.model is None:
        return
    if args.checkpoint is not None:
        raise UserError(f"--model {args.model} and --checkpoint {args.checkpoint}: give one of them, not both")
    path = SHIPPED_MODELS[args.model]
    if not path.exists():
        raise UserError(f"{path}: the {args.model} model is not in this checkout; pass --checkpoint PATH")
    args.checkpoint = str(path)
