"""Loudness paces each transition: monotone, exact at the keyframes, louder frames take bigger steps."""

import numpy as np
import pytest

from sd.audio.energy import FLOOR, frame_energy
from sd.audio.load import Audio
from sd.gif.easing import linear
from sd.gif.keyframes import Keyframe
from sd.gif.pacing import paced_progress
from sd.gif.timeline import plan_frames


def test_paced_progress_formula():
    t = paced_progress([1.0, 3.0, 1.0, 5.0])
    assert t == pytest.approx([0.0, 0.1, 0.4, 0.5])  # cumulative sums / 10
    assert paced_progress([2.0] * 4) == pytest.approx([0, 0.25, 0.5, 0.75])  # constant speed: linear
    with pytest.raises(ValueError):
        paced_progress([1.0, 0.0])


def test_loud_passages_move_faster_and_keyframes_stay_exact():
    speeds = [1.0] * 6 + [4.0] * 6 + [1.0] * 12  # frames 6-11 are four times as loud
    keyframes = [Keyframe(0, "a"), Keyframe(12, "b"), Keyframe(24, "c")]
    specs = plan_frames(keyframes, linear, speeds=speeds)
    assert len(specs) == 25
    assert [(s.left, s.weight) for s in (specs[0], specs[12], specs[24])] == [(0, 0.0), (1, 0.0), (2, 0.0)]
    first = [s.weight for s in specs[:12]] + [1.0]  # the transition 0 -> 12, ending on keyframe b
    steps = np.diff(first)
    assert np.all(steps > 0)  # monotone
    assert steps[7] == pytest.approx(4 * steps[1])  # a loud frame's step is 4x a quiet one's
    second = [s.weight for s in specs[12:24]]
    assert second == pytest.approx([i / 12 for i in range(12)])  # even loudness: even steps


def test_frame_energy_follows_loudness_with_smoothing():
    rate, fps = 8000, 10
    t = np.arange(2 * rate) / rate
    samples = (np.sin(2 * np.pi * 220 * t) * np.where(t < 1, 0.1, 0.8)).astype(np.float32)  # quiet, then loud
    audio = Audio(samples, rate)
    raw = frame_energy(audio, fps, 24, smoothing=0)
    assert raw[:10] == pytest.approx(raw[0], rel=1e-2) and raw[10:20] == pytest.approx(raw[15], rel=1e-2)
    mean_rms = (0.1 + 0.8) / 2 / np.sqrt(2) * 20 / 24
    assert raw[5] == pytest.approx(0.1 / np.sqrt(2) + FLOOR * mean_rms, rel=1e-2)
    assert raw[22] == pytest.approx(FLOOR * mean_rms, rel=1e-2)  # past the end: the floor alone
    smooth = frame_energy(audio, fps, 24, smoothing=0.3)
    assert np.all(smooth > 0) and smooth[9] > raw[9] and smooth[10] < raw[10]  # the step is spread out
    assert np.all(np.diff(smooth[:15]) >= -1e-9)  # still rising into the loud part
