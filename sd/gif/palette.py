"""One palette for a whole animation.

A GIF frame holds at most 256 colours. Quantizing every frame on its own (Pillow's default) gives each
frame slightly different colours, and flat areas flicker; fitting one palette to the pixels of all
frames keeps a colour the same colour throughout. When the frames use 256 colours or fewer in all (pixel
art, flat shapes) the palette is exactly those colours, so nothing changes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

MAX_SAMPLES = 1 << 20  # pixels the median cut sees; a strided sample of all frames beyond that


def shared_palette(frames: list[Image.Image], colors: int = 256) -> Image.Image:
    """A 'P' image whose palette serves all `frames` (Image.quantize(palette=...) maps onto it)."""
    pixels = np.concatenate([np.asarray(f.convert("RGB")).reshape(-1, 3) for f in frames])  # (N, 3)
    packed = (pixels[:, 0].astype(np.uint32) << 16) | (pixels[:, 1].astype(np.uint32) << 8) | pixels[:, 2]
    distinct = np.unique(packed)
    if len(distinct) <= colors:  # exact: every colour gets its own entry
        table = np.stack([(distinct >> 16) & 255, (distinct >> 8) & 255, distinct & 255], axis=1).astype(np.uint8)
    else:
        sample = pixels[:: max(1, len(pixels) // MAX_SAMPLES)]  # (<= 2M, 3), deterministic
        fitted = Image.fromarray(sample[None]).quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
        table = np.asarray(fitted.getpalette()[: 3 * colors], dtype=np.uint8).reshape(-1, 3)
    palette = Image.new("P", (1, 1))
    flat = table.reshape(-1).tolist()
    palette.putpalette(flat + flat[:3] * (256 - len(table)))  # pad with copies of the first colour
    return palette


def apply_palette(frame: Image.Image, palette: Image.Image, dither: bool = False) -> Image.Image:
    dither_mode = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    return frame.convert("RGB").quantize(palette=palette, dither=dither_mode)
