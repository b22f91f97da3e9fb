"""Frame plans: each keyframe exactly once, no duplicate frames at joints, loop exact; slerp.

Ping-pong is not planned: animate copies the frames back (tests/sd/gif/test_outputs.py checks it)."""

import math

import pytest
import torch

from sd.errors import UserError
from sd.gif.easing import linear, smooth
from sd.gif.interpolation import lerp, slerp
from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings
from sd.gif.timeline import FrameSpec, plan_frames

KEYS = [Keyframe(0, "a"), Keyframe(4, "b"), Keyframe(8, "c")]


def shown(frames: list[FrameSpec]) -> list[tuple[int, int, float]]:
    return [(f.left, f.right, round(f.weight, 6)) for f in frames]


def test_plain_plan_hits_every_keyframe_once_on_its_frame():
    frames = plan_frames(KEYS, linear)
    assert len(frames) == 9  # frames 0..8
    keyframe_frames = [i for i, f in enumerate(frames) if f.weight == 0.0]
    assert keyframe_frames == [0, 4, 8]
    assert [frames[i].left for i in keyframe_frames] == [0, 1, 2]
    assert shown(frames)[1:4] == [(0, 1, 0.25), (0, 1, 0.5), (0, 1, 0.75)]
    assert len(set(shown(frames))) == len(frames)  # no duplicate frame at the joints


def test_loop_returns_to_the_first_keyframe_without_repeating_it():
    frames = plan_frames(KEYS, linear, loop=True)
    assert len(frames) == 12  # 0..7 forward, 8..11 travel back from c to a; frame 0 follows when the GIF loops
    assert shown(frames)[8:] == [(2, 0, 0.0), (2, 0, 0.25), (2, 0, 0.5), (2, 0, 0.75)]
    assert sum(1 for f in frames if f.weight == 0.0) == 3
    assert len(plan_frames(KEYS, linear, loop=True, loop_frames=6)) == 14


def test_loop_and_pingpong_together_are_refused():
    with pytest.raises(UserError, match="choose --loop or --pingpong, not both"):
        GifSettings(loop=True, pingpong=True).validate()


def test_single_keyframe_and_easing():
    assert shown(plan_frames([Keyframe(0, "a")], smooth, loop=True)) == [(0, 0, 0.0)]
    assert smooth(0.0) == 0.0 and smooth(1.0) == 1.0 and smooth(0.5) == pytest.approx(0.5)
    assert smooth(0.1) < linear(0.1) and smooth(0.9) > linear(0.9)  # slow into and out of keyframes


def test_slerp_keeps_the_norm_of_noise_where_lerp_shrinks_it():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 8, 8, generator=gen), torch.randn(4, 8, 8, generator=gen)
    assert torch.equal(slerp(a, b, 0.0), a) or torch.allclose(slerp(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    middle_norm = slerp(a, b, 0.5).norm() / a.norm()
    assert abs(middle_norm - 1) < 0.1  # both have norm ~16; the slerp midpoint stays on the sphere
    assert lerp(a, b, 0.5).norm() / a.norm() < 0.8  # ~1/sqrt(2): washed-out middle frames
    assert torch.allclose(slerp(a, a.clone(), 0.3), a)  # parallel: falls back to lerp
    a, b = a / a.norm(), b / b.norm()  # constant angular speed holds between vectors of equal norm
    c = slerp(a, b, 0.25)
    angle = math.degrees(math.acos(float((a.flatten() @ c.flatten()) / (a.norm() * c.norm()))))
    total = math.degrees(math.acos(float((a.flatten() @ b.flatten()) / (a.norm() * b.norm()))))
    assert angle == pytest.approx(total / 4, rel=1e-3)  # constant angular speed
