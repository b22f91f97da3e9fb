"""Prediction overlays: each image next to its prediction, with errors marked, as one PNG grid."""

from __future__ import annotations

import numpy as np
import torch


def overlay(images: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, columns: int = 8) -> np.ndarray:
    """Rows of (image, overlay) pairs; overlay: correct shape pixels tinted white, misses red, false alarms blue."""
    rgb = ((images.permute(0, 2, 3, 1) + 1) * 127.5).clamp(0, 255).numpy().astype(np.float32)  # (N, 64, 64, 3)
    p, t = pred.bool().numpy()[..., None], target.bool().numpy()[..., None]  # (N, 64, 64, 1)
    tinted = 0.35 * rgb + 0.65 * np.where(p & t, 255.0, 0.0)
    tinted = np.where(t & ~p, np.array([255.0, 0, 0]), tinted)  # missed shape pixels
    tinted = np.where(p & ~t, np.array([0, 0, 255.0]), tinted)  # background called shape
    pairs = np.concatenate([rgb, tinted], axis=2)  # (N, 64, 128, 3)
    n = len(pairs) - len(pairs) % columns or len(pairs)
    rows = [np.concatenate(list(pairs[i : i + columns]), axis=1) for i in range(0, n, columns)]
    grid = np.concatenate(rows, axis=0)
    return grid.round().astype(np.uint8)
