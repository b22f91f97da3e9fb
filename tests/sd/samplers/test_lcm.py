"""The LCM sampler against diffusers' LCMScheduler, built as a user builds it: `from_config` of SD 1.5's config.

The "UNet" is a fixed function of (x, t), so both sides see the same model output while their states agree; the
noise LCM injects between steps comes from the same per-image generators, so a wrong number of draws or a wrong
order shows up in the next step and in the generators' final states.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import LCMScheduler, PNDMScheduler
from diffusers.utils.torch_utils import randn_tensor as diffusers_randn_tensor

from sd.errors import UserError
from sd.samplers import make_sampler
from sd.samplers.lcm import consistency_scalings, lcm_timesteps
from sd.samplers.noise import randn_tensor
from tests.sd.samplers.test_parity import SD15_SCHEDULER_CONFIG

SHAPE = (3, 4, 8, 8)
SEEDS = (11, 22, 33)
MAX_REL_ERROR = 1e-6


def reference(prediction_type: str = "epsilon", **options) -> LCMScheduler:
    """What `LCMScheduler.from_config(pipe.scheduler.config)` gives for an SD 1.5 pipeline (the LCM-LoRA recipe)."""
    pndm = PNDMScheduler.from_config({**SD15_SCHEDULER_CONFIG, "prediction_type": prediction_type})
    return LCMScheduler.from_config(pndm.config, **options)


def generators() -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in SEEDS]


def fake_unet(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    wiggle = torch.randn(x.shape, generator=torch.Generator().manual_seed(int(t)))
    return 0.3 * x + 0.1 * torch.sin(x * float(t) / 1000) + 0.5 * wiggle


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


def walk(mine, ref, timesteps, x_mine, x_ref, **step_options) -> None:
    """Both samplers over `timesteps`; `step_options` go to diffusers' step (TCD's eta, as the pipeline passes it)."""
    gens_mine, gens_ref = generators(), generators()
    for i, t in enumerate(timesteps):
        assert torch.equal(mine.scale_model_input(x_mine, t), x_mine)
        x_mine = mine.step(fake_unet(x_mine, t), t, x_mine, generator=gens_mine)
        x_ref = ref.step(fake_unet(x_ref, t), t, x_ref, generator=gens_ref, return_dict=False, **step_options)[0]
        error = rel_error(x_mine, x_ref)
        assert error <= MAX_REL_ERROR, f"step {i} (t={int(t)}): rel error {error:.2e}"
    for g_mine, g_ref in zip(gens_mine, gens_ref, strict=True):  # same draws, so later seeds line up
        assert torch.equal(g_mine.get_state(), g_ref.get_state())


def test_timesteps_of_the_docstring():
    assert lcm_timesteps(1).tolist() == [999]
    assert lcm_timesteps(2).tolist() == [999, 499]
    assert lcm_timesteps(4).tolist() == [999, 759, 499, 259]


@pytest.mark.parametrize(("steps", "original"), [(s, o) for o in (50, 25) for s in (1, 2, 3, 4, 8, 25, 50) if s <= o])
def test_timesteps_match(steps, original):
    mine = make_sampler("lcm", original_inference_steps=original)
    ref = reference(original_inference_steps=original)
    mine.set_timesteps(steps)
    ref.set_timesteps(steps)
    assert torch.equal(mine.timesteps, ref.timesteps) and mine.timesteps.dtype == ref.timesteps.dtype
    assert mine.init_noise_sigma == ref.init_noise_sigma == 1.0


@pytest.mark.parametrize("strength", [0.3, 0.5, 0.75])
def test_timesteps_with_strength_match(strength):
    mine, ref = make_sampler("lcm"), reference()
    mine.set_timesteps(4, strength=strength)
    ref.set_timesteps(4, strength=strength)
    assert torch.equal(mine.timesteps, ref.timesteps)


def test_boundary_condition():
    """f(x, 0) ~ x: c_skip(0) = 1, c_out(0) = 0; by t = 999 the model's x0 estimate is all that is left."""
    c_skip, c_out = consistency_scalings(torch.tensor([0, 19, 999]))
    assert c_skip.tolist()[0] == 1.0 and c_out.tolist()[0] == 0.0
    assert c_skip[2].item() < 1e-6 and abs(c_out[2].item() - 1.0) < 1e-6
    ref = reference()
    for t in (0, 19, 259, 999):
        expected = ref.get_scalings_for_boundary_condition_discrete(torch.tensor(t))
        got = consistency_scalings(torch.tensor(t))
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_txt2img_trajectory(steps, prediction_type):
    mine, ref = make_sampler("lcm", prediction_type=prediction_type), reference(prediction_type)
    mine.set_timesteps(steps)
    ref.set_timesteps(steps)
    x_mine = randn_tensor(SHAPE, generators(), torch.float32, "cpu") * mine.init_noise_sigma
    x_ref = diffusers_randn_tensor(SHAPE, generator=generators(), dtype=torch.float32) * ref.init_noise_sigma
    walk(mine, ref, ref.timesteps, x_mine, x_ref)


@pytest.mark.parametrize("steps", [2, 4, 8])
def test_img2img_trajectory(steps):
    img2img_walk(make_sampler("lcm"), reference(), steps)


def img2img_walk(mine, ref, steps: int, strength: float = 0.6, **step_options) -> None:
    """StableDiffusionImg2ImgPipeline's way: full timesteps, then the tail from a begin index, noised there."""
    mine.set_timesteps(steps)
    ref.set_timesteps(steps)
    t_start = steps - min(int(steps * strength), steps)
    mine.set_begin_index(t_start)
    ref.set_begin_index(t_start)
    timesteps = ref.timesteps[t_start:]
    init = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    noise = randn_tensor(SHAPE, generators(), torch.float32, "cpu")
    x_mine = mine.add_noise(init, noise, timesteps[:1].repeat(SHAPE[0]))
    x_ref = ref.add_noise(init, noise, timesteps[:1].repeat(SHAPE[0]))
    assert torch.equal(x_mine, x_ref)
    walk(mine, ref, timesteps, x_mine, x_ref, **step_options)


def test_injected_noise_comes_from_the_generators():
    """Guards the trajectory tests against passing vacuously: other seeds give another sample at 4 steps, and one
    step draws nothing (its result does not depend on the generators)."""
    assert rel_error(final_sample("lcm", 4, seed_offset=1), final_sample("lcm", 4, seed_offset=0)) > 1e-2
    assert torch.equal(final_sample("lcm", 1, seed_offset=1), final_sample("lcm", 1, seed_offset=0))


def final_sample(name: str, steps: int, seed_offset: int, **options) -> torch.Tensor:
    """The fake UNet sampled from a fixed start, the injected noise drawn from generators seeded SEEDS + offset."""
    sampler = make_sampler(name, **options)
    sampler.set_timesteps(steps)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    gens = [torch.Generator().manual_seed(s + seed_offset) for s in SEEDS]
    for t in sampler.timesteps:
        x = sampler.step(fake_unet(x, t), t, x, generator=gens)
    return x


def test_too_many_steps_is_a_user_error():
    with pytest.raises(UserError, match="LCM samples at most 50 steps"):
        make_sampler("lcm").set_timesteps(51)
