"""Rendered frames on disk, named by a hash of everything that determines them.

An interrupted run then resumes where it stopped, and a re-run that only changes how frames are written
(fps, format, palette, pixelate, scale) re-encodes without generating anything. Each entry is one
safetensors file: the frame's pixels, its final latents (what --feedback starts the next frame from) and,
for keyframes, the latents the in-between frames branch from. Entries are written under a temporary name
and renamed, so a Ctrl-C never leaves a broken one.

A key hashes the run's settings that change pixels (FrameKeys.base) with what is the frame's own: its
keyframe's prompt and seed, or its two keyframes' and its weight, and (--feedback) the previous frame's key,
(--video) the clip frame it starts from. A setting added later joins the hash only when it is on, so
frames cached before it existed keep their keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings
from sd.gif.timeline import FrameSpec


def frame_key(parts: dict) -> str:
    """A stable hash of a JSON-able description of one frame (floats as exact hex, so 0.1 != 0.1000001)."""

    def exact(value: object) -> object:
        if isinstance(value, float):
            return value.hex()
        if isinstance(value, dict):
            return {k: exact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [exact(v) for v in value]
        return value

    text = json.dumps(exact(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class FrameKeys:
    """The cache key of every frame of one run."""

    def __init__(
        self, settings: GifSettings, keyframes: list[Keyframe], seeds: list[int], base: dict,
        in_between: dict | None = None,
    ) -> None:  # fmt: skip
        """`base`: what the renderer decided that applies to every frame (weights, size, dtype, sharing...);
        `in_between`: what changes in-betweens only (so keyframes keep their keys when it is switched on)."""
        s = settings
        self.keyframes, self.seeds, self.in_between = keyframes, seeds, in_between or {}
        self.base = base | {
            "negative": s.negative_prompt, "steps": s.steps, "sampler": s.sampler, "guidance": float(s.guidance),
            "text_interp": s.text_interp, "fixed_latent": s.fixed_latent, "init": s.init_image_sha256,
            "strength": float(s.strength) if s.init_image or s.feedback else None, "feedback": s.feedback,
        }  # fmt: skip
        if s.loras:  # only then, so frames cached before LoRAs existed keep their keys
            self.base["loras"] = [[lora["sha256"], float(lora["scale"])] for lora in s.loras]
        if s.video is not None:  # only then, so the keys of runs without a video stay as they were
            self.base |= {"video": s.video_sha256, "video_strength": float(s.video_strength)}

    def _keyframe(self, index: int) -> dict:
        return {"prompt": self.keyframes[index].prompt, "seed": self.seeds[index]}

    def key(self, spec: FrameSpec, previous: str | None = None, video_frame: int | None = None) -> str:
        if spec.weight == 0.0:
            parts = {"keyframe": self._keyframe(spec.left)}
        else:
            left, right = self._keyframe(spec.left), self._keyframe(spec.right)
            parts = {"left": left, "right": right, "weight": float(spec.weight)} | self.in_between
        if video_frame is not None:
            parts["video_frame"] = video_frame
        return frame_key(self.base | parts | {"previous": previous})


class FrameCache:
    def __init__(self, folder: str | Path | None) -> None:
        """`folder=None` caches nothing."""
        self.folder = Path(folder) if folder is not None else None

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{key}.safetensors"

    def get(self, key: str) -> dict[str, torch.Tensor] | None:
        if self.folder is None or not self._path(key).exists():
            return None
        try:
            entry = load_file(self._path(key))
        except (SafetensorError, OSError):
            return None  # unreadable (e.g. a disk error): generate it again
        return entry

    def put(self, key: str, entry: dict[str, torch.Tensor]) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._path(key).with_suffix(f".partial-{os.getpid()}")
        try:
            save_file({k: v.detach().cpu().contiguous() for k, v in entry.items()}, tmp)
            os.replace(tmp, self._path(key))
        finally:
            tmp.unlink(missing_ok=True)
