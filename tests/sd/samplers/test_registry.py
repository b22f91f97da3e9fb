"""Sampler names and options are user input: mistakes are UserErrors that say what to choose."""

import pytest

from sd.errors import UserError
from sd.samplers import SAMPLERS, make_sampler


def test_registry_names():
    assert list(SAMPLERS) == ["ddpm", "ddim", "euler", "euler_a", "dpmpp_2m", "lcm", "tcd"]
    for name in SAMPLERS:
        assert make_sampler(name).order == 1


def test_unknown_sampler_lists_the_choices():
    with pytest.raises(UserError) as excinfo:
        make_sampler("heun")
    assert str(excinfo.value) == "unknown sampler 'heun'; choose one of ddpm, ddim, euler, euler_a, dpmpp_2m, lcm, tcd"


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


def test_timestep_facts_go_only_to_samplers_that_space_their_steps():
    """`timestep_config` is the checkpoint's, not a user option; LCM and TCD take their timesteps from their grid."""
    from sd.samplers import options_of, spacing_of
    from sd.samplers.spacing import SD15_TIMESTEPS

    assert all("timestep_config" not in options_of(name) and "schedule" not in options_of(name) for name in SAMPLERS)
    assert {name: spacing_of(name, SD15_TIMESTEPS) for name in SAMPLERS} == {
        "ddpm": "leading", "ddim": "leading", "euler": "linspace", "euler_a": "linspace", "dpmpp_2m": "linspace",
        "lcm": None, "tcd": None,
    }  # fmt: skip
    assert "eta" in options_of("ddim") and "eta" in options_of("tcd") and "eta" not in options_of("lcm")


@pytest.mark.parametrize("steps", [61, 122])
def test_trailing_step_counts_where_diffusers_slips_are_refused(steps):
    """np.arange's float step gives diffusers a t = -1 timestep at these counts; we say so instead."""
    from sd.samplers.spacing import TimestepConfig

    sampler = make_sampler("euler", timestep_config=TimestepConfig("trailing"))
    with pytest.raises(UserError, match=f"trailing spacing at {steps} steps visits t = -1") as info:
        sampler.set_timesteps(steps)
    suggested = int(str(info.value).rsplit(" ", 1)[1])
    sampler.set_timesteps(suggested)
    assert len(sampler.timesteps) == suggested and sampler.timesteps.min() >= 0


def test_unknown_spacing():
    from sd.samplers.spacing import TimestepConfig

    with pytest.raises(UserError, match="timestep spacing 'karras' is not supported; use one of leading, linspace"):
        TimestepConfig("karras")
