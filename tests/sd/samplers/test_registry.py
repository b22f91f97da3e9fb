"""Sampler names and options are user input: mistakes are UserErrors that say what to choose."""

import pytest

from sd.errors import UserError
from sd.samplers import SAMPLERS, make_sampler


def test_registry_names():
    assert list(SAMPLERS) == ["ddpm", "ddim", "euler", "euler_a", "dpmpp_2m", "lcm"]
    for name in SAMPLERS:
        assert make_sampler(name).order == 1


def test_unknown_sampler_lists_the_choices():
    with pytest.raises(UserError) as excinfo:
        make_sampler("heun")
    assert str(excinfo.value) == "unknown sampler 'heun'; choose one of ddpm, ddim, euler, euler_a, dpmpp_2m, lcm"


def test_option_the_sampler_does_not_take():
    with pytest.raises(UserError, match="'euler' takes no option 'eta'"):
        make_sampler("euler", eta=0.5)


def test_ddim_eta_is_kept_on_the_sampler():
    assert make_sampler("ddim", eta=0.5).eta == 0.5
    with pytest.raises(UserError, match="eta must be >= 0"):
        make_sampler("ddim", eta=-1.0)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_unsupported_prediction_type(name):
    with pytest.raises(UserError, match="prediction_type 'sample' is not supported"):
        make_sampler(name, prediction_type="sample")


@pytest.mark.parametrize("steps", [0, 1001])
def test_step_count_out_of_range(steps):
    sampler = make_sampler("ddim")
    with pytest.raises(UserError, match="steps must be between 1 and 1000"):
        sampler.set_timesteps(steps)
