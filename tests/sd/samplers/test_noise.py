"""randn_tensor draws what diffusers' randn_tensor draws, and one generator per image makes images independent;
InterpolatedNoise mixes two generators' draws, as a GIF's in-between frames need for the noise LCM injects."""

import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor as diffusers_randn_tensor

from sd.gif.interpolation import slerp
from sd.samplers import make_sampler
from sd.samplers.noise import InterpolatedNoise, randn_tensor

SHAPE = (3, 4, 8, 8)


def gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_single_generator_matches_diffusers():
    ours = randn_tensor(SHAPE, torch.Generator().manual_seed(7), torch.float32, "cpu")
    theirs = diffusers_randn_tensor(SHAPE, generator=torch.Generator().manual_seed(7), dtype=torch.float32)
    assert torch.equal(ours, theirs)


def test_generator_list_matches_diffusers():
    ours = randn_tensor(SHAPE, gens(1, 2, 3), torch.float32, "cpu")
    theirs = diffusers_randn_tensor(SHAPE, generator=gens(1, 2, 3), dtype=torch.float32)
    assert torch.equal(ours, theirs)
    assert not torch.equal(ours, randn_tensor(SHAPE, torch.Generator().manual_seed(1), torch.float32, "cpu"))


def test_one_element_list_is_the_generator_itself():
    ours = randn_tensor(SHAPE, gens(4), torch.float32, "cpu")
    theirs = diffusers_randn_tensor(SHAPE, generator=gens(4), dtype=torch.float32)
    assert torch.equal(ours, theirs)
    assert torch.equal(ours, randn_tensor(SHAPE, torch.Generator().manual_seed(4), torch.float32, "cpu"))


def test_image_i_does_not_depend_on_the_batch_size():
    batch_of_three = randn_tensor(SHAPE, gens(10, 20, 30), torch.float32, "cpu")
    batch_of_two = randn_tensor((2, *SHAPE[1:]), gens(20, 30), torch.float32, "cpu")
    assert torch.equal(batch_of_three[1:], batch_of_two)


def test_dtype_and_device():
    noise = randn_tensor(SHAPE, gens(1, 2, 3), torch.float16, torch.device("cpu"))
    assert noise.dtype == torch.float16 and noise.device.type == "cpu"
    theirs = diffusers_randn_tensor(SHAPE, generator=gens(1, 2, 3), dtype=torch.float16)
    assert torch.equal(noise, theirs)


def test_unseeded_draw_has_the_shape():
    assert randn_tensor(SHAPE).shape == SHAPE


def test_interpolated_noise_mixes_the_kth_draws():
    """Image i's k-th draw is slerp(a_i's k-th draw, b_i's k-th draw, w_i), each generator advancing as alone."""
    source = InterpolatedNoise(gens(1, 2), gens(10, 20), [0.25, 0.5], slerp)
    alone_a, alone_b = gens(1, 2), gens(10, 20)
    for _ in range(3):
        draw = randn_tensor((2, *SHAPE[1:]), source, torch.float32, "cpu")
        for i, w in enumerate((0.25, 0.5)):
            a = randn_tensor((1, *SHAPE[1:]), alone_a[i], torch.float32, "cpu")
            b = randn_tensor((1, *SHAPE[1:]), alone_b[i], torch.float32, "cpu")
            assert torch.equal(draw[i : i + 1], slerp(a, b, w))
    for mine, alone in zip(source.a + source.b, alone_a + alone_b, strict=True):
        assert torch.equal(mine.get_state(), alone.get_state())


def test_lcm_with_interpolated_noise_runs_between_its_keyframes():
    """Weight 0 is keyframe a's own run, weight 1 keyframe b's; in between the injected noise is neither's."""
    def run(noise) -> torch.Tensor:
        sampler = make_sampler("lcm")
        sampler.set_timesteps(4)
        x = torch.randn((1, *SHAPE[1:]), generator=torch.Generator().manual_seed(0))
        for t in sampler.timesteps:
            x = sampler.step(0.3 * x + 0.01 * float(t) / 1000, t, x, generator=noise)
        return x

    keyframe_a, keyframe_b = run(gens(1)), run(gens(2))
    assert not torch.equal(keyframe_a, keyframe_b)
    assert torch.equal(run(InterpolatedNoise(gens(1), gens(2), [0.0], slerp)), keyframe_a)
    assert torch.equal(run(InterpolatedNoise(gens(1), gens(2), [1.0], slerp)), keyframe_b)
    between = run(InterpolatedNoise(gens(1), gens(2), [0.5], slerp))
    assert not torch.equal(between, keyframe_a) and not torch.equal(between, keyframe_b)


def test_interpolated_noise_needs_one_pair_per_image():
    with pytest.raises(ValueError, match="2 and 1 generators for 2 weights"):
        InterpolatedNoise(gens(1, 2), gens(3), [0.0, 1.0], slerp)
    with pytest.raises(ValueError, match="2 interpolated generators for a batch of 3"):
        randn_tensor(SHAPE, InterpolatedNoise(gens(1, 2), gens(3, 4), [0.0, 1.0], slerp))
