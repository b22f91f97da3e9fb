"""Video input: frame count and fps read from a clip made in the test, the output keeps them, and each
output frame follows its input frame (img2img at a low strength, with the shipped model)."""

import json

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from sd.cli.main import main
from sd.paths import DEFAULT_CHECKPOINT
from sd.video.reader import read_video

FRAMES, FPS = 9, 8.0


def moving_square(n: int) -> np.ndarray:
    """A white square sliding from left to right on a blue background, 64x64."""
    frame = np.zeros((64, 64, 3), dtype=np.uint8)
    frame[:] = (35, 80, 220)
    x = 4 + n * 5
    frame[22:42, x : x + 20] = 245
    return frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    options = {"codec": "libx264", "pixelformat": "yuv420p", "macro_block_size": 1, "ffmpeg_params": ["-crf", "10"]}
    with imageio.get_writer(path, format="FFMPEG", fps=FPS, ffmpeg_log_level="error", **options) as w:
        for n in range(FRAMES):
            w.append_data(moving_square(n))
    return path


def bright_centroid_x(image: Image.Image) -> float:
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    mask = grey > 160
    return float(np.nonzero(mask)[1].mean()) if mask.any() else -1.0


def test_reader_counts_frames_and_fps(clip):
    video = read_video(clip)
    assert len(video.frames) == FRAMES and video.fps == pytest.approx(FPS)
    assert video.frame_at(3, FPS) == 3 and video.frame_at(3, FPS / 2) == 6 and video.frame_at(99, FPS) == FRAMES - 1
    assert abs(bright_centroid_x(video.frames[4]) - (4 + 4 * 5 + 9.5)) < 1.5


def test_output_keeps_fps_and_follows_the_input(clip, tmp_path):
    out = tmp_path / "out"  # a folder of PNGs: compare pixels without another encode
    code = main(["gif", "a large white square in the center on a blue background", "--video", str(clip),
                 "--video-strength", "0.3", "--steps", "10", "--guidance", "1", "--checkpoint", str(DEFAULT_CHECKPOINT),
                 "--no-cache", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["settings"]["fps"] == pytest.approx(FPS)  # the clip's, not the default 12
    outputs = sorted(out.glob("frame_*.png"))
    assert len(outputs) == FRAMES  # one plain prompt over the clip's frame count
    inputs = read_video(clip).frames
    xs = [bright_centroid_x(Image.open(p)) for p in outputs]
    expected = [bright_centroid_x(f) for f in inputs]
    assert np.all(np.diff(xs) > 0)  # the square keeps moving right, as in the clip
    assert np.max(np.abs(np.array(xs) - np.array(expected))) < 4  # within 4 px of where the clip has it


def test_fps_override_and_errors(clip, tmp_path, capsys):
    out = tmp_path / "half.gif"
    assert main(["gif", "0: a red circle", "3: a blue square", "--video", str(clip), "--fps", "4", "--steps", "1",
                 "--checkpoint", str(DEFAULT_CHECKPOINT), "--no-cache", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    record = json.loads((tmp_path / "half.gif.json").read_text())
    assert record["settings"]["fps"] == 4 and len(record["frames"]) == 4
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nothing")
    assert main(["gif", "a", "--video", str(bad), "--out", str(tmp_path / "x.gif")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}: not a readable video")
