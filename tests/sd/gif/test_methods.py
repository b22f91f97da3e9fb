"""The in-between methods: AdaIN reaches its target statistics and leaves keyframes alone; the spacing search evens
out a known jump and keeps the frame count; the new settings replay from the sidecar byte for byte."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from sd.cli.main import main
from sd.errors import UserError
from sd.gif.adain import adain_between, channel_stats
from sd.gif.animate import animate
from sd.gif.renderer import RenderedFrame
from sd.gif.settings import GifSettings
from sd.gif.smoothness import step_distances
from sd.gif.spacing import render_evenly, respaced, snapped
from sd.gif.timeline import FrameSpec
from tests.sd.gif.conftest import KEYFRAMES


def test_adain_gives_the_lerp_of_the_keyframes_channel_statistics():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(1, 4, 8, 8, generator=generator) * torch.tensor([1.0, 2.0, 0.5, 3.0]).view(1, 4, 1, 1) + 1.5
    b = torch.randn(1, 4, 8, 8, generator=generator) * 0.7 - torch.tensor([2.0, 0.0, 1.0, -1.0]).view(1, 4, 1, 1)
    z = torch.randn(1, 4, 8, 8, generator=generator) * 5 + 3
    for w in (0.0, 0.3, 1.0):
        mean, std = channel_stats(adain_between(z, a, b, w))
        (mean_a, std_a), (mean_b, std_b) = channel_stats(a), channel_stats(b)
        torch.testing.assert_close(mean, (1 - w) * mean_a + w * mean_b, rtol=0, atol=1e-5)
        torch.testing.assert_close(std, (1 - w) * std_a + w * std_b, rtol=1e-5, atol=1e-6)
    moved = adain_between(z, a, b, 0.3)
    assert moved.dtype == z.dtype and moved.shape == z.shape
    # only each channel's mean and scale change: the pattern within a channel is the same
    assert torch.corrcoef(torch.stack([moved[0, 1].flatten(), z[0, 1].flatten()]))[0, 1] > 0.9999


class PathRenderer:
    """Stands in for FrameRenderer on a synthetic transition: the frame at weight w is a bar filled to D(w) of its
    width, so the distance of two frames (mean |pixel difference|) is 255 |D(w1) - D(w2)|."""

    def __init__(self, distance) -> None:
        self.distance, self.rendered, self.calls = distance, [], []

    def render(self, specs: list[FrameSpec]) -> list[RenderedFrame]:
        self.calls.append([spec.weight for spec in specs])
        frames = []
        for spec in specs:
            done = self.distance(spec.weight) if spec.weight > 0 else float(spec.left == 1)
            bar = np.zeros((2, 1000, 3), np.uint8)
            bar[:, : round(done * 1000)] = 255
            self.rendered += [spec.weight] if spec.weight > 0 else []
            frames.append(RenderedFrame(spec, Image.fromarray(bar), torch.zeros(1), f"{spec}", 0, cached=False))
        return frames


def jump(w: float) -> float:
    """A path with a known jump: 60% of the change happens between weights 0.47 and 0.52, the rest evenly."""
    return 0.4 * w + 0.6 * float(np.clip((w - 0.47) / 0.05, 0, 1))


def jump_ratio(frames) -> float:
    steps = step_distances([f.image for f in frames])
    return max(steps) / float(np.median(steps))


def test_spacing_search_gives_even_steps_on_a_path_with_a_known_jump():
    planned = [FrameSpec(0, 1, i / 16) for i in range(16)] + [FrameSpec(1, 1, 0.0)]
    assert jump_ratio(PathRenderer(jump).render(planned)) > 15  # evenly spaced weights: one step has 40% of it
    renderer = PathRenderer(jump)
    frames = render_evenly(renderer, planned, probes=12, snap=0.0, rounds=2)
    assert jump_ratio(frames) < 1.3
    assert len(frames) == 17 and frames[0].spec == planned[0] and frames[-1].spec == planned[-1]
    weights = [f.spec.weight for f in frames[1:-1]]
    assert weights == sorted(weights) and sum(0.47 <= w <= 0.52 for w in weights) >= 6  # frames gather at the jump
    assert 12 < len(renderer.rendered) <= 12 + 15  # the probes, then the chosen weights (each rendered once)
    assert len(set(renderer.rendered)) == len(renderer.rendered)


def test_a_target_within_reach_of_a_free_probe_takes_it_and_a_probe_stands_in_once():
    linear = ([0.0, 0.3, 0.55, 1.0], [0.3, 0.25, 0.45])  # probes at 0.3 and 0.55 on a path with D(w) = w
    # 3 in-betweens: a frame's step is D(1) / 4 = 0.25; snap 0.25 reaches 0.0625 of D, snap 0.18 only 0.045
    assert snapped([0.25, 0.5, 0.75], [0.25, 0.5, 0.75], *linear, 0.25, 3, set()) == [0.3, 0.55, 0.75]
    assert snapped([0.25, 0.5, 0.75], [0.25, 0.5, 0.75], *linear, 0.18, 3, set()) == [0.25, 0.5, 0.75]
    assert snapped([0.25, 0.5, 0.75], [0.25, 0.5, 0.75], *linear, 0.0, 3, set()) == [0.25, 0.5, 0.75]
    # the planned distance decides, not the respaced weight: the target drawn at 0.9 is still planned at D = 0.5
    assert snapped([0.5], [0.9], *linear, 0.25, 3, set()) == [0.55]
    taken = {0.3}  # already showing a frame of the first half
    assert snapped([0.25, 0.5], [0.25, 0.5], *linear, 0.25, 3, taken) == [0.25, 0.55] and taken == {0.25, 0.3, 0.55}
    one = ([0.0, 0.5, 1.0], [0.5, 0.5])
    assert snapped([0.45, 0.55], [0.45, 0.55], *one, 0.5, 3, set()) == [0.5, 0.55]  # the probe stands in once


def test_snapping_renders_fewer_frames_and_keeps_the_steps_even_on_a_path_with_a_known_jump():
    planned = [FrameSpec(0, 1, i / 16) for i in range(16)] + [FrameSpec(1, 1, 0.0)]
    exact, snapping = PathRenderer(jump), PathRenderer(jump)
    frames = {snap: render_evenly(r, planned, 12, snap, 2) for snap, r in ((0.0, exact), (0.2, snapping))}
    assert len(snapping.rendered) < len(exact.rendered) - 2  # probes stood in for frames
    assert len(frames[0.2]) == 17 and jump_ratio(frames[0.0]) < jump_ratio(frames[0.2]) < 1.5


def test_rounds_render_every_rounds_th_slot_in_turn_and_keep_the_steps_even():
    """After the keyframes and the probes' rounds (6 even, then one halving a round), the 15 in-betweens' targets
    come in `rounds` calls: slots 0, R, 2R, ... first, then 1, R + 1, ...; each call's targets are the respaced
    weights of those slots (so they rise with the slot), less any already rendered."""
    planned = [FrameSpec(0, 1, i / 16) for i in range(16)] + [FrameSpec(1, 1, 0.0)]
    for rounds in (1, 2, 3):  # jump ratio 1.45, 1.27, 1.65 on this path, against 17 for the planned weights
        renderer = PathRenderer(jump)
        frames = render_evenly(renderer, planned, 12, 0.0, rounds)
        targets = renderer.calls[1 + 1 + 6 :]  # keyframes, the 6 first probes, 6 halvings: then the targets
        assert [len(t) for t in targets] == [len(range(offset, 15, rounds)) for offset in range(rounds)]
        assert all(t == sorted(t) for t in targets) and len(frames) == 17 and jump_ratio(frames) < 1.7
    snapping = PathRenderer(jump)  # a distilled student's own: snap 0.25 in 3 rounds
    frames = render_evenly(snapping, planned, 12, 0.25, 3)
    assert len(snapping.rendered) == 19 < 12 + 15 and jump_ratio(frames) < 1.7


def test_spacing_keeps_a_path_that_is_already_even_and_one_that_does_not_move():
    planned = [FrameSpec(0, 1, i / 8) for i in range(8)] + [FrameSpec(1, 1, 0.0)]
    frames = render_evenly(PathRenderer(lambda w: w), planned, probes=4, snap=0.0, rounds=2)
    assert [f.spec.weight for f in frames[1:-1]] == pytest.approx([i / 8 for i in range(1, 8)], abs=0.01)
    assert respaced([0.0, 0.25, 0.5, 1.0], [0.0, 0.5, 1.0], [0.0, 0.0]) == [0.0, 0.25, 0.5, 1.0]


def animation(pipe, **settings):
    """The planned weights unless told otherwise, so methods compare frame for frame."""
    settings = {"frame_spacing": "planned"} | settings
    return animate(KEYFRAMES, settings=GifSettings(steps=6, **settings), pipe=pipe, cache_dir=None, progress=False)


@pytest.mark.parametrize("share", [True, False])
def test_adain_moves_in_betweens_only_and_keyframes_keep_their_pixels_and_keys(tiny_pipe, share):
    plain, moved = animation(tiny_pipe, share=share), animation(tiny_pipe, share=share, adain=True)
    keys = [[f["key"] for f in a.record["frames"]] for a in (plain, moved)]
    for i in (0, 3, 6):  # the keyframes
        assert np.array_equal(np.asarray(plain.frames[i]), np.asarray(moved.frames[i])) and keys[0][i] == keys[1][i]
    for i in (1, 2, 4, 5):
        assert keys[0][i] != keys[1][i] and not np.array_equal(np.asarray(plain.frames[i]), np.asarray(moved.frames[i]))
    assert moved.unet_steps == plain.unet_steps


def test_even_spacing_keeps_the_frame_count_and_the_keyframes_and_moves_the_weights(tiny_pipe):
    plain = animation(tiny_pipe, batch=3, frame_spacing="planned")
    even = animation(tiny_pipe, batch=3, frame_spacing="even", probes=3)
    assert len(even.frames) == len(plain.frames) == 7
    for i in (0, 3, 6):
        assert np.array_equal(np.asarray(plain.frames[i]), np.asarray(even.frames[i]))
        assert even.specs[i] == plain.specs[i]
    for span in (even.specs[0:3], even.specs[3:6]):  # within each transition: increasing, inside (0, 1)
        weights = [s.weight for s in span]
        assert weights[0] == 0.0 and weights == sorted(weights) and weights[1] > 0 and weights[-1] < 1
    # keyframes in full; per transition the 3 probes and the 2 chosen weights from the branch step, at most
    assert plain.unet_steps < even.unet_steps <= 3 * 6 + 2 * (3 + 2) * (6 - round(6 * 0.8))


def test_new_settings_round_trip_through_the_sidecar_byte_for_byte(tiny_file, tmp_path):
    first = tmp_path / "first.gif"
    common = ["--checkpoint", str(tiny_file), "--quiet"]
    settings = ["--steps", "3", "--adain", "--frame-spacing", "even", "--probes", "3", "--snap", "0.5", "--rounds", "3"]
    assert main(["gif", *KEYFRAMES.split("\n"), *settings, "--out", str(first), "--cache-dir", str(tmp_path / "cache"),
                 *common]) == 0  # fmt: skip
    record = json.loads((tmp_path / "first.gif.json").read_text())
    new = {"adain": True, "frame_spacing": "even", "probes": 3, "snap": 0.5, "rounds": 3}
    assert record["settings"] | new == record["settings"]
    again = tmp_path / "again.gif"
    assert main(["gif", "--from-json", str(tmp_path / "first.gif.json"), "--out", str(again), "--no-cache",
                 *common]) == 0  # fmt: skip
    assert again.read_bytes() == first.read_bytes()
    assert (tmp_path / "again.gif.json").read_text() == (tmp_path / "first.gif.json").read_text().replace(
        str(first), str(again)
    )


@pytest.mark.parametrize("settings", [dict(adain=True, feedback=True), dict(adain=True, video="clip.mp4"),
                                      dict(frame_spacing="evenly"), dict(probes=0), dict(snap=-0.1),
                                      dict(snap=0.6), dict(rounds=0), dict(rounds=9)])  # fmt: skip
def test_settings_that_cannot_work_are_refused_in_one_line(settings):
    with pytest.raises(UserError) as error:
        GifSettings(**settings).validate()
    assert len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize("variant", ["outer", "inner"])
def test_attention_interpolation_moves_in_betweens_only_and_keyframes_keep_their_pixels_and_keys(tiny_pipe, variant):
    plain, aid = animation(tiny_pipe, share=False), animation(tiny_pipe, share=False, attention=variant)
    keys = [[f["key"] for f in a.record["frames"]] for a in (plain, aid)]
    for i in (0, 3, 6):
        assert np.array_equal(np.asarray(plain.frames[i]), np.asarray(aid.frames[i])) and keys[0][i] == keys[1][i]
    for i in (1, 2, 4, 5):
        assert keys[0][i] != keys[1][i] and not np.array_equal(np.asarray(plain.frames[i]), np.asarray(aid.frames[i]))
    assert aid.unet_steps == plain.unet_steps


def test_attention_interpolation_is_batch_invariant_and_the_cache_reruns_keyframes_to_capture_them(tiny_pipe, tmp_path):
    """Keyframes cached by a plain run are denoised again when in-betweens need their K/V; --batch changes no pixel."""
    settings = dict(attention="outer", attention_fraction=1.0)
    alone = animation(tiny_pipe, **settings)
    batched = animation(tiny_pipe, batch=4, **settings)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(alone.frames, batched.frames, strict=True))
    cache = tmp_path / "cache"
    plain = GifSettings(steps=6, frame_spacing="planned")
    run = lambda **extra: animate(KEYFRAMES, settings=replace(plain, **extra), pipe=tiny_pipe,  # noqa: E731
                                  cache_dir=cache, progress=False)  # fmt: skip
    run()  # caches the keyframes (and plain in-betweens)
    cached = run(**settings)
    assert cached.cached_frames == 0  # the keyframes ran again, for their capture
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(alone.frames, cached.frames, strict=True))
    assert run(**settings).cached_frames == 7


def test_attention_budget_bounds_the_capture_and_changes_the_frames(tiny_pipe):
    full = animation(tiny_pipe, attention="outer", share=False)
    small = animation(tiny_pipe, attention="outer", share=False, attention_budget_mb=0.2)
    assert not np.array_equal(np.asarray(full.frames[1]), np.asarray(small.frames[1]))
    with pytest.raises(UserError, match="budget"):
        animation(tiny_pipe, attention="outer", share=False, attention_budget_mb=1e-6)


def test_attention_settings_round_trip_through_the_sidecar_byte_for_byte(tiny_file, tmp_path):
    first = tmp_path / "first.gif"
    common = ["--checkpoint", str(tiny_file), "--quiet", "--no-cache"]
    assert main(["gif", *KEYFRAMES.split("\n"), "--steps", "3", "--attention", "inner", "--attention-fraction", "0.7",
                 "--attention-budget-mb", "8", "--out", str(first), *common]) == 0  # fmt: skip
    record = json.loads((tmp_path / "first.gif.json").read_text())
    wanted = {"attention": "inner", "attention_fraction": 0.7, "attention_budget_mb": 8.0}
    assert record["settings"] | wanted == record["settings"]
    again = tmp_path / "again.gif"
    assert main(["gif", "--from-json", str(tmp_path / "first.gif.json"), "--out", str(again), *common]) == 0
    assert again.read_bytes() == first.read_bytes()


@pytest.mark.parametrize("settings", [dict(attention="middle"), dict(attention="outer", attention_fraction=1.5),
                                      dict(attention="outer", attention_budget_mb=0), dict(attention="outer",
                                      feedback=True)])  # fmt: skip
def test_attention_settings_that_cannot_work_are_refused_in_one_line(settings):
    with pytest.raises(UserError) as error:
        GifSettings(**settings).validate()
    assert len(str(error.value).splitlines()) == 1
