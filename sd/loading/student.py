"""A distilled student on disk: its UNet alone, and the base model that supplies the VAE and text encoder.

    model.diffusion_model.*            the student's UNet (fp16), under the base file's own key names
    "sd_from_scratch.student" (JSON)   {"base": "tiny-shapes.safetensors", "base_sha256": ...,
                                        "defaults": {"sampler": "lcm", "steps": 4, "guidance": 1.0},
                                        "recipe": {how it was distilled}}

A few-step student keeps its teacher's text encoder and VAE (both were frozen while it trained), so its file
holds only what changed: 8 MB for the tiny UNet instead of the 17 MB full model. Loading finds the base file
beside the student, else in weights/, checks that it is the very file the student was distilled from
(sha256), and returns the base checkpoint with the student's UNet and the student's sampling defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from sd.atomic_output import atomic_output
from sd.errors import UserError
from sd.file_hash import file_sha256
from sd.loading.checkpoint_types import Checkpoint, SamplingDefaults
from sd.loading.detect import UNET
from sd.loading.diffusers_folder import folder_sampling_defaults
from sd.loading.original import load_original
from sd.loading.read import read_weights, safetensors_metadata, sniff_format
from sd.loading.strict_load import strict_load
from sd.paths import WEIGHTS_DIR
from unet.pruned import build_pruned_unet

STUDENT_KEY = "sd_from_scratch.student"
# A student's GIFs: snapping in 3 rounds spends <= 0.1x the teacher's UNet evaluations on a 193-frame GIF, with as
# few large jumps as the teacher's spacing or fewer (docs/transitions.md#a-distilled-students-own-spacing).
STUDENT_GIF = {"snap": 0.25, "rounds": 3}


@dataclass(frozen=True)
class StudentInfo:
    base: str  # the base model's file name
    base_sha256: str
    defaults: SamplingDefaults
    recipe: dict


def student_info(path: str | Path) -> StudentInfo | None:
    """The student record in a file's safetensors header, or None for any other file (tensors are not read)."""
    path = Path(path)
    if not path.is_file() or sniff_format(path) != "safetensors":
        return None
    stored = safetensors_metadata(path).get(STUDENT_KEY)
    if stored is None:
        return None
    try:
        d = json.loads(stored)
        return StudentInfo(d["base"], d["base_sha256"], SamplingDefaults(**d["defaults"]), d["recipe"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{path}: its student record is unreadable ({error!r}); distil it again") from None


def model_defaults(path: str | Path | None) -> SamplingDefaults | None:
    """The sampling defaults a model carries, read before any loading: a student's (its file's header), or a
    diffusers folder's sampler (its scheduler class)."""
    if path is None:
        return None
    if Path(path).is_dir():
        return folder_sampling_defaults(Path(path))
    info = student_info(path)
    return info.defaults if info else None


def base_path(path: Path, info: StudentInfo) -> Path:
    """The base file beside the student, else the shipped one in weights/; it must be the file distilled from."""
    candidates = [path.parent / info.base, WEIGHTS_DIR / info.base]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise UserError(f"{path}: its base model {info.base} is neither beside it nor in {WEIGHTS_DIR}")
    if file_sha256(found) != info.base_sha256:
        raise UserError(f"{path}: was distilled from another {info.base} than {found} (sha256 differs); "
                        "distil it again from this base")  # fmt: skip
    return found


def load_student(
    path: str | Path, dtype: torch.dtype = torch.float32, prediction_type: str | None = None
) -> Checkpoint:
    path = Path(path)
    info = student_info(path)
    if info is None:
        raise UserError(f"{path}: not a distilled student file (no '{STUDENT_KEY}' metadata)")
    checkpoint = load_original(base_path(path, info), dtype, prediction_type)
    tensors, _ = read_weights(path)
    state = {k[len(UNET) :]: v for k, v in tensors.items() if k.startswith(UNET)}
    config, plan = checkpoint.unet.config, getattr(checkpoint.unet, "prune_plan", None)  # the teacher's architecture
    checkpoint.unet = strict_load(lambda: build_pruned_unet(config, plan), state, f"{path} (student UNet)", dtype)
    checkpoint.name = path.name
    checkpoint.defaults = info.defaults
    return checkpoint


def save_student(unet: nn.Module, path: str | Path, base: str | Path, defaults: SamplingDefaults, recipe: dict,
                 overwrite: bool = True) -> Path:  # fmt: skip
    """Write `unet` (fp16) as a student of the base file `base`, to be sampled with `defaults`."""
    path, base = Path(path), Path(base)
    tensors = {UNET + k: v.detach().to(torch.float16).contiguous().cpu() for k, v in unet.state_dict().items()}
    record = {"base": base.name, "base_sha256": file_sha256(base), "defaults": asdict(defaults), "recipe": recipe}
    with atomic_output(path, overwrite) as tmp:
        save_file(tensors, tmp, metadata={"format": "pt", STUDENT_KEY: json.dumps(record)})
    return path
