"""The --threads option of the commands that run long on the CPU (bench, prune recover, the trainers)."""

from __future__ import annotations

import argparse


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")


def apply_threads(args: argparse.Namespace) -> None:
    """torch.set_num_threads(args.threads) when --threads was given; otherwise torch keeps its own choice."""
    if args.threads:
        import torch  # here, so that building the parsers (--help) does not import torch

        torch.set_num_threads(args.threads)
