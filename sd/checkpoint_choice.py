"""Which checkpoint a command runs on: the one rule behind --checkpoint, --model and the default.

A given path wins; else the shipped model named by --model; else what the caller falls back to (a GIF sidecar's
recorded model); else the default shipped model. Every command and the UI ask here, so they agree on the rule and
on its errors, and a missing file is a one-line UserError before anything is loaded. No torch: `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

from sd.errors import UserError
from sd.paths import DEFAULT_MODEL, SHIPPED_MODELS


def resolve_checkpoint(
    path: str | Path | None = None, model: str | None = None, *, fallback: str | Path | None = None
) -> Path:
    """The checkpoint file or diffusers folder to load: `path`, else shipped `model`, else `fallback`, else
    the default shipped model. Raises UserError when both `path` and `model` are given or the file is missing."""
    if path and model:
        raise UserError(f"--model {model} and --checkpoint {path}: give one of them, not both")
    given = path or (None if model else fallback)
    if given:
        checkpoint = Path(given).expanduser()
        if not checkpoint.exists():
            raise UserError(f"{checkpoint}: no such checkpoint (give an SD 1.x/2.x file or a diffusers folder)")
        return checkpoint
    name = model or DEFAULT_MODEL
    if name not in SHIPPED_MODELS:
        raise UserError(f"--model {name}: no such shipped model; choose from {', '.join(SHIPPED_MODELS)}")
    checkpoint = SHIPPED_MODELS[name]
    if not checkpoint.exists():
        other = " or another --model NAME" if model else ""  # not every command has --model
        raise UserError(f"{checkpoint}: the shipped {name} model is not in this checkout (weights/README.md); "
                        f"pass --checkpoint PATH{other}")  # fmt: skip
    return checkpoint
