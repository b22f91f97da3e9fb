"""The model choices of the UI: the shipped model, the optional shipped ones (the mobile variant and the two
distilled students) when their weights are there, or any checkpoint path. A loaded model is kept, so the
next run starts at once. Choosing a distilled model moves the sampler, steps and guidance to its own, and its
GIFs use its own even spacing (--snap, --rounds), as `python -m sd gif` does."""

from __future__ import annotations

from pathlib import Path

from sd.checkpoint_choice import resolve_checkpoint
from sd.errors import UserError
from sd.gif.settings import GIF_SAMPLERS, GifSettings, with_model_defaults
from sd.loading.student import model_defaults
from sd.paths import DEFAULT_MODEL, SHIPPED_MODELS

EMBEDDED = f"embedded: {DEFAULT_MODEL}"
MOBILE = "mobile-tiny"
CHECKPOINT = "checkpoint path"
OPTIONAL = (MOBILE, "tiny-shapes-distilled", "mobile-tiny-distilled")  # shipped models, listed when present

_loaded: dict[Path, object] = {}


def available(name: str) -> bool:
    return SHIPPED_MODELS[name].is_file()


def model_choices() -> list[str]:
    optional = [name if available(name) else f"{name} (not available: {SHIPPED_MODELS[name].name} is missing)"
                for name in OPTIONAL]  # fmt: skip
    return [EMBEDDED, *optional, CHECKPOINT]


def checkpoint_for(choice: str, path: str | None) -> Path:
    """The file a choice names (sd/checkpoint_choice.py's rule), with the page's words for what is missing."""
    if choice == EMBEDDED:
        return resolve_checkpoint()
    name = choice.split(" (not available")[0]
    if name in OPTIONAL:
        if not available(name):
            raise UserError(f"{name} is not available: {SHIPPED_MODELS[name]} is missing; choose another model")
        return resolve_checkpoint(model=name)
    if not path or not path.strip():
        raise UserError("checkpoint path: give the path of an SD 1.x file or diffusers folder")
    return resolve_checkpoint(path.strip())


def sampling_for(choice: str, path: str | None) -> tuple[str, int, float]:
    """(sampler, steps, guidance) to show for a model: a distilled one's own, else the GIF defaults."""
    gif = GifSettings()
    try:
        own = model_defaults(checkpoint_for(choice, path))
    except UserError:  # not chosen yet or missing: the run itself will say so
        own = None
    values = [getattr(own, name, None) for name in ("sampler", "steps", "guidance")]
    values[0] = values[0] if values[0] in GIF_SAMPLERS else None  # the page lists the GIF samplers only
    return tuple(value if value is not None else getattr(gif, name)  # type: ignore[return-value]
                 for value, name in zip(values, ("sampler", "steps", "guidance"), strict=True))  # fmt: skip


def with_own_spacing(settings: GifSettings, checkpoint: Path) -> GifSettings:
    """`settings` from the page with the model's own --snap and --rounds; the page's sampler, steps and guidance
    (already the model's own, sampling_for) stay as the user left them."""
    return with_model_defaults(settings, model_defaults(checkpoint), given={"sampler", "steps", "guidance"})


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
