"""Pixels in and out of the pipeline: PIL images <-> tensors in the value ranges the models use.

The VAE works in [-1, 1]; the conversions round exactly as diffusers' VaeImageProcessor does, so the
same latents give byte-identical PNGs in both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from sd.errors import UserError


def load_image(path: str | Path) -> Image.Image:
    """An RGB image from disk, or a one-line UserError saying why not."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{path}: not a readable image ({error})") from None


def image_to_tensor(image: Image.Image, width: int, height: int) -> torch.Tensor:
    """(1, 3, H, W) in [-1, 1]; resized (Lanczos, as diffusers) to width x height."""
    if image.size != (width, height):
        image = image.resize((width, height), resample=Image.LANCZOS)
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3) in [0, 1]
    return torch.from_numpy(array).permute(2, 0, 1)[None] * 2.0 - 1.0  # (1, 3, H, W) in [-1, 1]


def tensor_to_images(decoded: torch.Tensor) -> list[Image.Image]:
    """VAE output (B, 3, H, W) in [-1, 1] -> B PIL images (x / 2 + 0.5, clamp, * 255, round)."""
    pixels = (decoded / 2 + 0.5).clamp(0, 1)  # (B, 3, H, W) in [0, 1]
    array = pixels.cpu().permute(0, 2, 3, 1).float().numpy()  # (B, H, W, 3)
    return [Image.fromarray((a * 255).round().astype("uint8")) for a in array]
