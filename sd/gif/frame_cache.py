"""Rendered frames on disk, named by a hash of everything that determines them.

An interrupted run then resumes where it stopped, and a re-run that only changes how frames are written
(fps, format, palette, pixelate, scale) re-encodes without generating anything. Each entry is one
safetensors file: the frame's pixels, its final latents (what --feedback starts the next frame from) and,
for keyframes, the latents the in-between frames branch from. Entries are written under a temporary name
and renamed, so a Ctrl-C never leaves a broken one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


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
