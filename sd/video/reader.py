"""Reading a video's frames and frame rate (imageio with the ffmpeg of the imageio-ffmpeg wheel).

Frame n of the animation, at n / fps seconds, takes the clip's frame at the same time,
round(n * clip_fps / fps), holding the clip's last frame once the clip has ended. The frame count is
counted by decoding (container metadata can be off by a frame or two).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sd.errors import UserError

MAX_VIDEO_FRAMES = 2000  # about 80 s at 25 fps: frames are kept in memory


@dataclass
class VideoClip:
    frames: list[Image.Image]
    fps: float

    def frame_at(self, index: int, fps: float) -> int:
        """Which clip frame animation frame `index` (played at `fps`) shows."""
        return min(round(index * self.fps / fps), len(self.frames) - 1)


def read_video(path: str | Path, max_frames: int = MAX_VIDEO_FRAMES) -> VideoClip:
    import imageio.v2 as imageio

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such video file")
    try:
        reader = imageio.get_reader(path, format="FFMPEG")
    except Exception as error:  # imageio raises OSError, RuntimeError, ... for files ffmpeg cannot open
        raise UserError(f"{path}: not a readable video ({type(error).__name__}: {error})") from None
    with reader:
        fps = float(reader.get_meta_data().get("fps") or 0)
        frames = []
        try:
            for frame in reader:
                if len(frames) == max_frames:
                    raise UserError(f"{path}: more than {max_frames} frames; cut the clip shorter")
                frames.append(Image.fromarray(np.asarray(frame)).convert("RGB"))
        except (OSError, RuntimeError) as error:
            raise UserError(f"{path}: the video could not be decoded ({error})") from None
    if not frames:
        raise UserError(f"{path}: the video has no frames")
    if not fps > 0:
        raise UserError(f"{path}: the video does not say its frame rate")
    return VideoClip(frames, fps)
