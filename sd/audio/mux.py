"""Putting the audio track into an MP4, in sync, with the ffmpeg binary the imageio-ffmpeg wheel carries.

The video is copied as it is; the audio is encoded to AAC, padded with silence when it is shorter than the
video and cut where the video ends (-af apad -t DURATION), so both streams last frames / fps seconds
(AAC works in blocks of 1024 samples, 23 ms at 44.1 kHz: under a frame at any usual fps).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sd.errors import UserError


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def mux_audio(video: Path, audio: Path, out: Path, duration: float) -> None:
    """Write `out`: `video`'s stream unchanged plus `audio`, both `duration` seconds long."""
    command = [
        ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", "-i", str(video), "-i", str(audio),
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "160k", "-af", "apad",
        "-t", f"{duration:.6f}", "-f", "mp4", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"{audio}: ffmpeg could not add this audio to the MP4 ({done.stderr.strip()[-300:]})")
