"""Resumable training state: model, EMA, optimizer, step and loss history in one weights-only file.

Written under a temporary name and renamed, so a run killed mid-save resumes from the previous one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sd.atomic_output import atomic_output


def save_state(path: Path, state: dict) -> None:
    with atomic_output(path, overwrite=True) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict | None:
    """The saved state, or None when there is none yet (a fresh run)."""
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
