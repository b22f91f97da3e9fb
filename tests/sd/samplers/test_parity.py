"""Every sampler against the diffusers scheduler it reimplements, step by step, for every timestep spacing.

The "UNet" is a fixed function of (scaled input, t), so both sides see the same model output whenever their
states agree; any divergence in timesteps, sigmas, scaling, step arithmetic, noise draws or generator use
shows up as a relative error above 1e-6 at the first step where it happens.

diffusers' side is built as its users build it: `X.from_config(config)` from SD 1.5's published scheduler
config, with `timestep_spacing` added for each spacing, and (the defaults case) from the PNDMScheduler that
config loads into, whose `from_config` leaves the spacing to each scheduler's own default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
)
from diffusers.utils.torch_utils import randn_tensor as diffusers_randn_tensor

from sd.bench.reference import DPMPP_2M_OPTIONS
from sd.samplers import make_sampler
from sd.samplers.noise import randn_tensor
from sd.samplers.spacing import SD15_TIMESTEPS, SPACINGS, TimestepConfig

# SD 1.5's published scheduler config (runwayml/stable-diffusion-v1-5, scheduler/scheduler_config.json), as
# published: it names no timestep_spacing and no prediction_type.
SD15_SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
    "trained_betas": None,
}
REFERENCES = {
    "ddpm": (DDPMScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, DPMPP_2M_OPTIONS),
}
STOCHASTIC = {"ddpm", "euler_a"}  # plus ddim with eta > 0
SHAPE = (3, 4, 8, 8)
SEEDS = (11, 22, 33)
MAX_REL_ERROR = 1e-6
STEPS = (1, 2, 4, 25)
PREDICTION_TYPES = ("epsilon", "v_prediction")

# (sampler, spacing, steps, eta): every sampler, spacing and step count, DDIM with and without noise.
CASES = [(name, spacing, steps, 0.0) for name in REFERENCES for spacing in SPACINGS for steps in STEPS]
CASES += [("ddim", spacing, steps, 1.0) for spacing in SPACINGS for steps in STEPS]


def case_id(case: tuple[str, str, int, float]) -> str:
    name, spacing, steps, eta = case
    return f"{name}-{spacing}-{steps}" + (f"-eta{eta:g}" if name == "ddim" else "")


def reference(name: str, spacing: str, prediction_type: str = "epsilon", **options: object):
    cls, defaults = REFERENCES[name]
    config = {**SD15_SCHEDULER_CONFIG, "timestep_spacing": spacing, "prediction_type": prediction_type}
    return cls.from_config(config, **defaults, **options)


def ours(name: str, spacing: str | None, eta: float, prediction_type: str = "epsilon", **options: object):
    config = replace(SD15_TIMESTEPS, spacing=spacing)
    options |= {"eta": eta} if name == "ddim" else {}
    return make_sampler(name, timestep_config=config, prediction_type=prediction_type, **options)


def generators() -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in SEEDS]


def fake_unet(scaled: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A deterministic stand-in for eps_theta(x, t): depends on both, plus a t-seeded 'noise estimate'."""
    t = float(t)
    wiggle = torch.randn(scaled.shape, generator=torch.Generator().manual_seed(int(t)))
    return 0.3 * scaled + 0.1 * torch.sin(scaled * t / 1000) + 0.5 * wiggle


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


def reference_step(name: str, scheduler, eta: float) -> Callable:
    """diffusers' step as StableDiffusionPipeline calls it (eta only where the scheduler takes it)."""
    extra = {"eta": eta} if name == "ddim" else {}
    return lambda out, t, x, gens: scheduler.step(out, t, x, generator=gens, return_dict=False, **extra)[0]


def run_both(name: str, eta: float, mine, ref, timesteps_mine, timesteps_ref, x_mine, x_ref) -> list[float]:
    """Walk both samplers over their timesteps; returns the relative error after each step."""
    assert torch.equal(timesteps_mine, timesteps_ref) and timesteps_mine.dtype == timesteps_ref.dtype
    gens_mine, gens_ref = generators(), generators()
    ref_step = reference_step(name, ref, eta)
    errors = []
    for t_mine, t_ref in zip(timesteps_mine, timesteps_ref, strict=True):
        scaled_mine, scaled_ref = mine.scale_model_input(x_mine, t_mine), ref.scale_model_input(x_ref, t_ref)
        assert rel_error(scaled_mine, scaled_ref) <= MAX_REL_ERROR, f"scale_model_input at t={t_ref}"
        x_mine = mine.step(fake_unet(scaled_mine, t_mine), t_mine, x_mine, generator=gens_mine)
        x_ref = ref_step(fake_unet(scaled_ref, t_ref), t_ref, x_ref, gens_ref)
        errors.append(rel_error(x_mine, x_ref))
        assert errors[-1] <= MAX_REL_ERROR, f"step {len(errors)} (t={t_ref}): rel error {errors[-1]:.2e}"
        assert torch.isfinite(x_mine).all()
    for g_mine, g_ref in zip(gens_mine, gens_ref, strict=True):  # same number of draws, so later seeds line up
        assert torch.equal(g_mine.get_state(), g_ref.get_state())
    print(f"{name} {mine.spacing} {len(errors)} steps {mine.prediction_type}: max rel error {max(errors):.2e}")
    return errors


def txt2img_trajectory(name: str, eta: float, mine, ref, steps: int) -> list[float]:
    mine.set_timesteps(steps)
    ref.set_timesteps(steps)
    x_mine = randn_tensor(SHAPE, generators(), torch.float32, "cpu") * mine.init_noise_sigma
    x_ref = diffusers_randn_tensor(SHAPE, generator=generators(), dtype=torch.float32) * ref.init_noise_sigma
    assert torch.equal(x_mine, x_ref)
    return run_both(name, eta, mine, ref, mine.timesteps, ref.timesteps, x_mine, x_ref)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_timesteps_init_sigma_and_sigmas(case):
    name, spacing, steps, eta = case
    mine, ref = ours(name, spacing, eta), reference(name, spacing)
    mine.set_timesteps(steps)
    ref.set_timesteps(steps)
    assert torch.equal(mine.timesteps, ref.timesteps) and mine.timesteps.dtype == ref.timesteps.dtype
    assert isinstance(mine.init_noise_sigma, float)
    assert mine.init_noise_sigma == float(ref.init_noise_sigma)
    assert mine.order == ref.order
    if hasattr(mine, "sigmas"):
        assert torch.equal(mine.sigmas, ref.sigmas)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_txt2img_trajectory(case, prediction_type):
    name, spacing, steps, eta = case
    mine, ref = ours(name, spacing, eta, prediction_type), reference(name, spacing, prediction_type)
    txt2img_trajectory(name, eta, mine, ref, steps)


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("name", list(REFERENCES))
def test_defaults_as_a_diffusers_user_gets_them(name, steps):
    """SD 1.5's folder names no spacing: diffusers' `X.from_config(pipe.scheduler.config)` then gives each
    scheduler its own default (linspace for Euler and DPM-Solver), and so does our config read from it."""
    cls, options = REFERENCES[name]
    ref = cls.from_config(PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG).config, **options)
    mine = make_sampler(name, timestep_config=TimestepConfig.from_diffusers(SD15_SCHEDULER_CONFIG))
    assert mine.spacing == ref.config.timestep_spacing == ("leading" if name in ("ddpm", "ddim") else "linspace")
    txt2img_trajectory(name, 0.0, mine, ref, steps)


@pytest.mark.parametrize("case", [c for c in CASES if c[2] > 1], ids=case_id)
def test_img2img_trajectory(case, strength: float = 0.6):
    """begin index + add_noise + the rest of the trajectory, as StableDiffusionImg2ImgPipeline does them."""
    name, spacing, steps, eta = case
    mine, ref = ours(name, spacing, eta), reference(name, spacing)
    mine.set_timesteps(steps)
    ref.set_timesteps(steps)
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    timesteps_mine, timesteps_ref = mine.timesteps[t_start * mine.order :], ref.timesteps[t_start * ref.order :]
    mine.set_begin_index(t_start * mine.order)
    if hasattr(ref, "set_begin_index"):  # DDPM and DDIM have none; the pipeline checks the same way
        ref.set_begin_index(t_start * ref.order)

    init = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))  # stands in for VAE latents
    noise_mine = randn_tensor(SHAPE, generators(), torch.float32, "cpu")
    noise_ref = diffusers_randn_tensor(SHAPE, generator=generators(), dtype=torch.float32)
    batch = SHAPE[0]
    x_mine = mine.add_noise(init, noise_mine, timesteps_mine[:1].repeat(batch))
    x_ref = ref.add_noise(init, noise_ref, timesteps_ref[:1].repeat(batch))
    assert rel_error(x_mine, x_ref) <= MAX_REL_ERROR
    run_both(name, eta, mine, ref, timesteps_mine, timesteps_ref, x_mine, x_ref)


@pytest.mark.parametrize("name", ["ddpm", "ddim", "euler_a"])
def test_stochastic_samplers_use_the_generators(name):
    """Guards the parity tests against passing vacuously: other seeds must give another image."""

    def final(seed_offset: int) -> torch.Tensor:
        sampler = ours(name, None, 1.0)
        sampler.set_timesteps(10)
        x = randn_tensor(SHAPE, generators(), torch.float32, "cpu") * sampler.init_noise_sigma
        gens = [torch.Generator().manual_seed(s + seed_offset) for s in SEEDS]
        for t in sampler.timesteps:
            x = sampler.step(fake_unet(sampler.scale_model_input(x, t), t), t, x, generator=gens)
        return x

    assert torch.equal(final(0), final(0))
    assert rel_error(final(1), final(0)) > 1e-2


def test_ddpm_fixed_large_variance():
    """Ho et al.'s other choice, sigma_t^2 = beta_t, as diffusers' variance_type="fixed_large"."""
    mine = ours("ddpm", "leading", 0.0, variance_type="fixed_large")
    ref = reference("ddpm", "leading", variance_type="fixed_large")
    txt2img_trajectory("ddpm", 0.0, mine, ref, 25)


@pytest.mark.parametrize("name", ["ddim", "euler", "dpmpp_2m"])
def test_the_spacings_differ(name):
    """Guards the spacing parity against passing vacuously: each spacing visits other timesteps."""
    visited = []
    for spacing in SPACINGS:
        sampler = ours(name, spacing, 0.0)
        sampler.set_timesteps(4)
        visited.append(sampler.timesteps.tolist())
    assert len({tuple(v) for v in visited}) == len(SPACINGS)


def test_ddim_set_alpha_to_one():
    """diffusers' default (a config without the key) ends DDIM at abar = 1; SD 1.5's config at abar_0."""
    config = {**SD15_SCHEDULER_CONFIG, "timestep_spacing": "trailing"}
    config.pop("set_alpha_to_one")
    mine = make_sampler("ddim", timestep_config=TimestepConfig.from_diffusers(config))
    assert mine.timestep_config.set_alpha_to_one and float(mine.final_alpha_cumprod) == 1.0
    txt2img_trajectory("ddim", 0.0, mine, DDIMScheduler.from_config(config), 4)
