"""An MP4 made with --audio carries the track, as long as the video (within one frame), and the audio's
loudness paces the frames."""

import json
import subprocess

import imageio.v2 as imageio
import numpy as np
import pytest

from sd.audio.mux import ffmpeg_exe
from sd.cli.main import main
from sd.loading.original import save_original
from tests.sd.audio.clicks import RATE, write_wav
from tests.tiny_checkpoint import tiny_checkpoint

FPS = 12


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    return save_original(tiny_checkpoint(), tmp_path_factory.mktemp("model") / "tiny.safetensors")


def audio_duration(path, rate: int = 48000) -> float:
    """Seconds of audio in a media file, by decoding it (no ffprobe needed): samples / rate."""
    command = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
               "-ar", str(rate), "-f", "s16le", "-"]  # fmt: skip
    done = subprocess.run(command, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-300:]
    return len(np.frombuffer(done.stdout, dtype=np.int16)) / rate


def tone(seconds: float, loud_from: float | None = None) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    gain = 0.1 if loud_from is None else np.where(t < loud_from, 0.05, 0.8)
    return (np.sin(2 * np.pi * 330 * t) * gain).astype(np.float32)


@pytest.mark.parametrize("seconds", [1.6, 0.4])  # longer than the video (cut) and shorter (padded)
def test_muxed_audio_lasts_as_long_as_the_video(tiny_file, tmp_path, seconds):
    song = write_wav(tmp_path / "song.wav", tone(seconds, loud_from=0.5))
    out = tmp_path / "clip.mp4"
    code = main(["gif", "0: a red circle", "11: a blue square", "--audio", str(song), "--fps", str(FPS), "--steps",
                 "2", "--checkpoint", str(tiny_file), "--no-cache", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    with imageio.get_reader(out, format="FFMPEG") as reader:
        frames = reader.count_frames()
        fps = reader.get_meta_data()["fps"]
    assert frames == 12 and fps == pytest.approx(FPS)
    video_seconds = frames / FPS
    assert abs(audio_duration(out) - video_seconds) <= 1 / FPS  # tolerance: one frame
    record = json.loads((tmp_path / "clip.mp4.json").read_text())
    assert record["settings"]["audio"] == str(song) and len(record["settings"]["audio_sha256"]) == 64
    weights = [f["weight"] for f in record["frames"][:11]]
    assert np.all(np.diff(weights) > 0)
    if seconds > 1:  # quiet for 0.5 s (6 frames), then loud: the transition moves faster in the loud part
        assert weights[7] - weights[6] > 4 * (weights[2] - weights[1])


def test_gif_with_audio_has_no_track_but_is_paced(tiny_file, tmp_path):
    song = write_wav(tmp_path / "song.wav", tone(1.0, loud_from=0.5))
    out = tmp_path / "clip.gif"
    assert main(["gif", "0: a", "11: b", "--audio", str(song), "--easing", "linear", "--steps", "1",
                 "--checkpoint", str(tiny_file), "--no-cache", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    weights = [f["weight"] for f in json.loads((tmp_path / "clip.gif.json").read_text())["frames"]]
    assert weights[0] == 0 and weights[-1] == 0 and len(weights) == 12
    assert weights[6] < 6 / 11  # the quiet first half covers less than half the way
