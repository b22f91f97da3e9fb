"""Writing frames: an animated GIF, an MP4, or a folder of PNGs, always via a temporary name.

GIF: every frame lasts round(1000 / fps) ms (the format stores hundredths of a second, so 12 fps is
stored as 80 ms), loops forever unless told not to, and by default all frames share one palette.
MP4: H.264 through imageio's ffmpeg (the imageio-ffmpeg wheel carries the binary), yuv420p so every
player opens it; with an audio file, its track is muxed in, in sync (sd/audio/mux.py). PNG:
frame_00000.png, ... in a folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sd.atomic_output import atomic_output
from sd.errors import UserError
from sd.gif.palette import apply_palette, shared_palette


def output_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".gif", ".mp4"):
        return suffix[1:]
    if suffix == "":
        return "png"
    raise UserError(f"{path}: write .gif, .mp4, or a folder name without a suffix (for PNG frames)")


def gif_duration_ms(fps: float) -> int:
    """What a GIF frame lasts: round(1000 / fps) ms, to the hundredth of a second the format stores."""
    return 10 * round(round(1000 / fps) / 10)


def write_gif(
    frames: list[Image.Image], path: Path, fps: float, palette: str = "shared", dither: bool = False,
    loop: bool = True, overwrite: bool = False,
) -> None:  # fmt: skip
    if palette == "shared":
        shared = shared_palette(frames)
        indexed = [apply_palette(f, shared, dither) for f in frames]
    else:
        mode = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
        indexed = [f.convert("RGB").quantize(256, dither=mode) for f in frames]
    options = {"loop": 0} if loop else {}
    with atomic_output(path, overwrite) as tmp:
        indexed[0].save(
            tmp, format="GIF", save_all=True, append_images=indexed[1:], duration=gif_duration_ms(fps),
            optimize=False, disposal=1, **options,
        )  # fmt: skip


def write_mp4(
    frames: list[Image.Image], path: Path, fps: float, overwrite: bool = False, audio: str | Path | None = None
) -> None:
    import imageio.v2 as imageio

    with atomic_output(path, overwrite) as tmp:
        named = tmp.with_name(tmp.name + ".mp4")  # ffmpeg picks its muxer by the name
        writer = imageio.get_writer(
            named, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2,
            ffmpeg_params=["-crf", "16"], ffmpeg_log_level="error",
        )  # fmt: skip
        with writer:
            for frame in frames:
                writer.append_data(np.asarray(frame.convert("RGB")))
        if audio is not None:
            from sd.audio.mux import mux_audio

            try:
                mux_audio(named, Path(audio), tmp, duration=len(frames) / fps)
            finally:
                named.unlink(missing_ok=True)
        else:
            named.replace(tmp)


def write_png_folder(frames: list[Image.Image], path: Path, overwrite: bool = False) -> None:
    with atomic_output(path, overwrite) as tmp:
        tmp.mkdir()
        for i, frame in enumerate(frames):
            frame.save(tmp / f"frame_{i:05d}.png", format="PNG")
