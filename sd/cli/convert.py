"""`python -m sd convert SRC DST`: between the original single-file layout and diffusers folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from sd.cli.model_option import PREDICTION_HELP
from sd.loading.dtype_names import DTYPE_NAMES
from sd.samplers.base import PREDICTION_TYPES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a checkpoint between original single-file and diffusers-folder layouts",
        description="Load SRC (a .safetensors/.ckpt file or a diffusers folder) and write DST. A DST "
        "ending in .safetensors or .ckpt is written in the original single-file layout; any other "
        "name becomes a diffusers folder that diffusers' StableDiffusionPipeline loads.",
    )
    parser.add_argument("src", help="checkpoint to read")
    parser.add_argument("dst", help="file (.safetensors/.ckpt) or folder to write")
    parser.add_argument("--dtype", choices=list(DTYPE_NAMES), default="fp32", help="dtype to write (default fp32)")
    parser.add_argument("--prediction-type", choices=PREDICTION_TYPES, help=PREDICTION_HELP + "; DST records it")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sd.loading.checkpoint import load_checkpoint  # torch: imported once the arguments have parsed
    from sd.loading.diffusers_folder import save_diffusers_folder
    from sd.loading.original import save_original

    checkpoint = load_checkpoint(args.src, args.dtype, args.prediction_type)
    dst = Path(args.dst)
    if dst.suffix in (".safetensors", ".ckpt"):
        save_original(checkpoint, dst, overwrite=args.overwrite)
        print(f"wrote {dst} (original single-file layout)")
    else:
        save_diffusers_folder(checkpoint, dst, overwrite=args.overwrite)
        print(f"wrote {dst}/ (diffusers folder)")
    return 0
