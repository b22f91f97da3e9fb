"""The model choices of the UI: the shipped model, the mobile variant when its weights are there, or any
checkpoint path. A loaded model is kept, so the next run starts at once."""

from __future__ import annotations

from pathlib import Path

from sd.errors import UserError
from sd.paths import DEFAULT_CHECKPOINT, WEIGHTS_DIR

EMBEDDED = "embedded: tiny-shapes"
MOBILE = "mobile-tiny"
CHECKPOINT = "checkpoint path"
MOBILE_WEIGHTS = WEIGHTS_DIR / "mobile-tiny.safetensors"

_loaded: dict[Path, object] = {}


def mobile_available() -> bool:
    return MOBILE_WEIGHTS.is_file()


def model_choices() -> list[str]:
    mobile = MOBILE if mobile_available() else f"{MOBILE} (not available: {MOBILE_WEIGHTS.name} is missing)"
    return [EMBEDDED, mobile, CHECKPOINT]


def checkpoint_for(choice: str, path: str | None) -> Path:
    if choice == EMBEDDED:
        return DEFAULT_CHECKPOINT
    if choice.startswith(MOBILE):
        if not mobile_available():
            raise UserError(f"mobile-tiny is not available: {MOBILE_WEIGHTS} is missing; choose another model")
        return MOBILE_WEIGHTS
    if not path or not path.strip():
        raise UserError("checkpoint path: give the path of an SD 1.x file or diffusers folder")
    checkpoint = Path(path.strip()).expanduser()
    if not checkpoint.exists():
        raise UserError(f"{checkpoint}: no such checkpoint")
    return checkpoint


def vocabulary_for(choice: str) -> str:
    """Which words 'inspire me' draws from (sd/inspire.py): the shapes models know only their grammar."""
    return "clip" if choice == CHECKPOINT else "shapes"


def load_pipeline(checkpoint: Path):
    from sd.loading.checkpoint import load_checkpoint
    from sd.pipeline import StableDiffusionPipeline

    key = checkpoint.resolve()
    if key not in _loaded:
        _loaded.clear()  # one model in memory at a time
        _loaded[key] = StableDiffusionPipeline(load_checkpoint(checkpoint))
    return _loaded[key]
