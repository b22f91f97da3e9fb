"""Encoded training latents kept on disk, so a second run on the same images and VAE skips the encoder.

Encoding 40,000 images takes minutes on 2 cores and every stage-2 run (the shipped model, mobile-tiny, each
ablation) encodes the same ones. The key hashes what the latents depend on: the VAE's weights and the
rendered images themselves (not their recipe), so a change to the renderer or the VAE can never reuse
stale latents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sd.atomic_output import atomic_output

DEFAULT_CACHE = Path("outputs/cache/latents")


def cache_key(vae_state: dict[str, torch.Tensor], images: np.ndarray) -> str:
    h = hashlib.sha256()
    for name in sorted(vae_state):
        h.update(name.encode())
        h.update(vae_state[name].detach().cpu().float().numpy().tobytes())
    h.update(str(images.shape).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    return h.hexdigest()[:24]


def cached_latents(
    folder: Path | None, vae_state: dict[str, torch.Tensor], images: np.ndarray,
    encode: Callable[[], tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) from the cache when there, else `encode()` and store it (folder None: no cache, no hashing)."""
    if folder is None:
        return encode()
    path = folder / f"{cache_key(vae_state, images)}.pt"
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return saved["mean"], saved["std"]
    mean, std = encode()
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True) as tmp:
        torch.save({"mean": mean, "std": std}, tmp)
    return mean, std
