"""The pixel-art look: a coarse pixel grid, one small palette for all frames, hard square pixels.

Each frame is averaged down to a grid `width` pixels wide (box filter: a grid cell is the mean of what
it covers), every frame is mapped onto one palette of `colors` colours fitted to all of them (so a
colour does not flicker between frames), and the grid is scaled back up with nearest neighbour.
"""

from __future__ import annotations

from PIL import Image

from sd.gif.palette import apply_palette, shared_palette


def pixelate(frames: list[Image.Image], width: int, colors: int = 16, dither: bool = False) -> list[Image.Image]:
    size = frames[0].size
    grid = (width, max(1, round(width * size[1] / size[0])))
    small = [f.convert("RGB").resize(grid, Image.BOX) for f in frames]
    palette = shared_palette(small, colors)
    return [apply_palette(f, palette, dither).convert("RGB").resize(size, Image.NEAREST) for f in small]
