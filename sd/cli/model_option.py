"""`--model NAME`: a shipped model by name (weights/NAME.safetensors) instead of a --checkpoint path, turned with
either into the one checkpoint to run; and the sampler, steps and guidance a model file asks for (a distilled
student's) when the user names none."""

from __future__ import annotations

import argparse
from pathlib import Path

from sd.checkpoint_choice import resolve_checkpoint
from sd.loading.checkpoint_types import SamplingDefaults
from sd.paths import SHIPPED_MODELS

SAMPLING_OPTIONS = ("sampler", "steps", "guidance")
PREDICTION_HELP = (
    "what the UNet predicts, when the checkpoint cannot tell: an SD 2.x single file is taken as v_prediction "
    "(SD 2.x 768) unless this says epsilon (SD 2.x-base 512); default: what the checkpoint says"
)
SPACING_HELP = (
    "which timesteps the steps visit: leading, linspace or trailing (trailing for Turbo models and few-step LCM); "
    "default: what the checkpoint's scheduler config says, else the sampler's diffusers default"
)


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=list(SHIPPED_MODELS), help="a shipped model instead of --checkpoint")


def apply_model_option(args: argparse.Namespace, fallback: str | Path | None = None) -> None:
    """Set args.checkpoint to the checkpoint to run, from --checkpoint, --model, `fallback` or the default
    (sd/checkpoint_choice.py), so that the commands then read args.checkpoint alone."""
    args.checkpoint = str(resolve_checkpoint(args.checkpoint, args.model, fallback=fallback))


def fill_sampling_defaults(args: argparse.Namespace, fallback: SamplingDefaults) -> None:
    """Set --sampler, --steps and --guidance left unset (None): to the model file's own defaults when it has
    them (a few-step student: LCM, 1-4 steps, no guidance), else to the command's `fallback`."""
    from sd.loading.student import model_defaults  # reads the file's header; imports torch

    own = model_defaults(args.checkpoint)
    for name in SAMPLING_OPTIONS:
        if getattr(args, name) is None:
            value = getattr(own, name) if own is not None else None
            setattr(args, name, getattr(fallback, name) if value is None else value)
