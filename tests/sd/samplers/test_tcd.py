"""The TCD sampler against diffusers' TCDScheduler from SD 1.5's config, with eta (gamma) passed to each step as
StableDiffusionPipeline passes its `eta`. Same fake UNet, generators and tolerance as the LCM tests."""

from __future__ import annotations

import pytest
import torch
from diffusers import PNDMScheduler, TCDScheduler
from diffusers.utils.torch_utils import randn_tensor as diffusers_randn_tensor

from sd.errors import UserError
from sd.samplers import make_sampler
from sd.samplers.noise import randn_tensor
from tests.sd.samplers.test_lcm import SHAPE, final_sample, generators, img2img_walk, rel_error, walk
from tests.sd.samplers.test_parity import SD15_SCHEDULER_CONFIG

ETAS = (0.0, 0.3, 1.0)


def reference(prediction_type: str = "epsilon") -> TCDScheduler:
    pndm = PNDMScheduler.from_config({**SD15_SCHEDULER_CONFIG, "prediction_type": prediction_type})
    return TCDScheduler.from_config(pndm.config)


@pytest.mark.parametrize("steps", [1, 2, 4, 8, 50])
def test_timesteps_are_lcms_and_match(steps):
    mine, ref, lcm = make_sampler("tcd"), reference(), make_sampler("lcm")
    for sampler in (mine, ref, lcm):
        sampler.set_timesteps(steps)
    assert torch.equal(mine.timesteps, ref.timesteps) and torch.equal(mine.timesteps, lcm.timesteps)
    assert mine.init_noise_sigma == ref.init_noise_sigma == 1.0


@pytest.mark.parametrize("eta", ETAS)
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_txt2img_trajectory(steps, prediction_type, eta):
    mine, ref = make_sampler("tcd", prediction_type=prediction_type, eta=eta), reference(prediction_type)
    mine.set_timesteps(steps)
    ref.set_timesteps(steps)
    x_mine = randn_tensor(SHAPE, generators(), torch.float32, "cpu") * mine.init_noise_sigma
    x_ref = diffusers_randn_tensor(SHAPE, generator=generators(), dtype=torch.float32) * ref.init_noise_sigma
    walk(mine, ref, ref.timesteps, x_mine, x_ref, eta=eta)


@pytest.mark.parametrize("steps", [2, 4, 8])
def test_img2img_trajectory(steps, eta: float = 0.3):
    img2img_walk(make_sampler("tcd", eta=eta), reference(), steps, eta=eta)


def test_eta_sets_how_much_noise_is_fresh():
    """Guards the trajectories against passing vacuously: with eta > 0 other seeds give another sample, with
    eta = 0 the generators are not touched, and eta changes the result."""

    def final(eta: float, seed_offset: int) -> torch.Tensor:
        return final_sample("tcd", 4, seed_offset, eta=eta)

    assert rel_error(final(0.3, 1), final(0.3, 0)) > 1e-2
    assert torch.equal(final(0.0, 1), final(0.0, 0))
    assert rel_error(final(0.3, 0), final(1.0, 0)) > 1e-2


def test_eta_out_of_range_is_a_user_error():
    with pytest.raises(UserError, match=r"eta \(gamma\) must be in \[0, 1\]"):
        make_sampler("tcd", eta=1.5)
