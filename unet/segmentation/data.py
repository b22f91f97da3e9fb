"""The generated shapes (`sd.data`) as segmentation pairs: an image and its 0/1 mask of the shape's pixels.

Training images and held-out images come from different seeds; the held-out set also has the colour-shape
pairs (a green circle, a red star, ...) that no training image shows, so the score is about shapes and edges,
not remembered colours.
"""

from __future__ import annotations

import numpy as np
import torch

from sd.data.dataset import generate


def to_tensors(images: np.ndarray, masks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (N, 64, 64, 3) -> (N, 3, 64, 64)
    return x, torch.from_numpy(masks).long()  # (N, 64, 64) class per pixel


def segmentation_data(n: int, seed: int, held_out: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(images in [-1, 1] (N, 3, 64, 64), masks (N, 64, 64) in {0, 1}), deterministic by seed."""
    data = generate(n, seed, held_out=held_out)
    return to_tensors(data.images, data.masks)


def held_out_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Half fresh renders of training pairs, half the held-out colour-shape pairs, from seeds training never uses."""
    a = segmentation_data(n - n // 2, 10_000 + seed)
    b = segmentation_data(n // 2, 20_000 + seed, held_out=True)
    return torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]])
