"""Onsets of clicks synthesised at known times land on frame round(t * fps), within one frame."""

import pytest

from sd.audio.load import load_audio
from sd.audio.onsets import keyframe_template, onset_frames, onset_times
from sd.cli.main import main
from sd.gif.keyframes import parse_keyframes
from tests.sd.audio.clicks import clicks, write_wav

TIMES = [0.5, 1.25, 1.9, 2.6, 3.1]  # seconds


@pytest.fixture(scope="module")
def click_file(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("audio") / "clicks.wav", clicks(TIMES, duration=3.5))


@pytest.mark.parametrize("fps", [8, 12, 24])
def test_click_onsets_land_on_their_frames(click_file, fps):
    times = onset_times(load_audio(click_file), "percussive")
    assert len(times) == len(TIMES)
    frames = onset_frames(times, fps)
    assert frames[0] == 0 and len(frames) == len(TIMES) + 1
    for found, expected in zip(frames[1:], TIMES, strict=True):
        assert abs(found - round(expected * fps)) <= 1  # tolerance: one frame


def test_both_components_and_min_gap(click_file):
    times = onset_times(load_audio(click_file), "both")
    frames = onset_frames(times, 12)  # duplicates of one click in the two parts merge into one frame
    assert all(abs(f - round(t * 12)) <= 1 for f, t in zip(frames[1:], TIMES, strict=False))
    assert onset_frames([0.5, 0.55, 1.0], 12, min_gap=3) == [0, 6, 12]


def test_template_parses_and_ends_with_the_audio(click_file):
    text = keyframe_template(load_audio(click_file), 12, source="clicks.wav")
    keyframes = parse_keyframes(text)
    assert keyframes[0].frame == 0 and keyframes[-1].frame == round(3.5 * 12) - 1
    assert len(keyframes) == len(TIMES) + 2  # frame 0, the onsets, the last frame


def test_cli_prints_the_template(click_file, capsys):
    assert main(["audio-keyframes", str(click_file), "--fps", "12"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    frames = [int(line.split(":")[0]) for line in lines]
    assert [abs(f - round(t * 12)) <= 1 for f, t in zip(frames[1:-1], TIMES, strict=True)] == [True] * len(TIMES)


def test_unreadable_audio_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    assert main(["audio-keyframes", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}: not a readable audio file")
