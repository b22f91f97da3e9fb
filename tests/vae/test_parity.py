"""vae.AutoencoderKL against diffusers' AutoencoderKL: same weights, same outputs.

Full-size tests use the real SD 1.5 architecture with random weights (every parameter redrawn,
so no path hides behind a zero or a unit norm) on small 64x64 images to keep CPU time down.
Two independent routes load the same weights into both models:
- diffusers' weights -> our `vae_from_diffusers` -> our model;
- our weights, prefixed `first_stage_model.` as in an original SD file -> diffusers' own
  `convert_ldm_vae_checkpoint` -> diffusers' model. This proves our attribute names are the real
  original checkpoint keys, without trusting our converter.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import torch
from diffusers import AutoencoderKL as DiffusersVAE
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from torch import nn

from sd.loading.diffusers_vae import vae_config_to_diffusers, vae_from_diffusers, vae_to_diffusers
from tests.metrics import relative_error
from vae.autoencoder import AutoencoderKL
from vae.config import SD15_VAE, VAEConfig

TOLERANCE = 1e-5  # max relative error, fp32 on CPU
# In float64 the two must agree to rounding: this separates a real difference in the maths from fp32
# noise (diffusers' fp32 is itself ~4e-6 away from its own float64 result at SD 1.5 size).
FLOAT64_TOLERANCE = 1e-12

# stable-diffusion-v1-5's vae/config.json, written out here rather than derived from our config.
SD15_DIFFUSERS_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
TINY = VAEConfig(ch=16, ch_mult=(1, 2, 4, 4), num_res_blocks=1, norm_groups=8)


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Redraw every parameter: weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2), norm scales ~ N(1, 0.1^2)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if p.ndim > 1:
                p.copy_(noise / p[0].numel() ** 0.5)
            else:
                is_norm_scale = name.endswith("weight")  # the only 1-D weights are GroupNorm scales
                p.copy_(float(is_norm_scale) + 0.1 * noise)
    return model


def inputs(config: VAEConfig, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Two images in [-1, 1] and two latents: 64x64 images in fp32, 16x16 in fp64 (slow on CPU)."""
    generator = torch.Generator().manual_seed(0)
    size = 64 if dtype == torch.float32 else 16
    x = torch.rand(2, config.in_channels, size, size, generator=generator) * 2 - 1
    side = size // config.downsample_factor
    z = torch.randn(2, config.embed_dim, side, side, generator=generator)
    return x.to(dtype), z.to(dtype)


def diffusers_vae(config: dict, device: str = "cpu") -> DiffusersVAE:
    with torch.device(device):
        return DiffusersVAE(**config).eval()


def seeded() -> torch.Generator:
    return torch.Generator().manual_seed(7)


@torch.no_grad()
def errors(ours: AutoencoderKL, theirs: DiffusersVAE, dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """Relative error of every output the pipeline and training use."""
    x, z = inputs(ours.config, dtype)
    posterior, reference = ours.encode(x), theirs.encode(x).latent_dist
    return {
        "mean": relative_error(posterior.mean, reference.mean),
        "logvar": relative_error(posterior.logvar, reference.logvar),
        "std": relative_error(posterior.std, reference.std),
        "sample": relative_error(posterior.sample(seeded()), reference.sample(seeded())),
        "kl": relative_error(posterior.kl(), reference.kl()),
        "decode": relative_error(ours.decode(z), theirs.decode(z).sample),
        "forward": relative_error(ours(x)[0], theirs(x).sample),
    }


def check(
    measured: dict[str, float], record_property, tolerance: float = TOLERANCE, label: str = "fp32"
) -> None:
    for name, error in measured.items():
        record_property(f"relative_error_{label}_{name}", error)
    print(f"\n{label}: " + " ".join(f"{name}={error:.2e}" for name, error in measured.items()))
    assert max(measured.values()) <= tolerance, f"{label} relative errors {measured} exceed {tolerance}"


def ours_from_diffusers(theirs: DiffusersVAE, config: VAEConfig) -> AutoencoderKL:
    with torch.device("meta"):
        ours = AutoencoderKL(config)
    ours.load_state_dict(vae_from_diffusers(theirs.state_dict(), config), strict=True, assign=True)
    return ours.eval()


def diffusers_from_ours(ours: AutoencoderKL, diffusers_config: dict) -> tuple[DiffusersVAE, dict]:
    """Load our weights into diffusers through diffusers' own single-file converter."""
    checkpoint = {f"first_stage_model.{k}": v for k, v in ours.state_dict().items()}
    converted = convert_ldm_vae_checkpoint(checkpoint, diffusers_config)
    theirs = diffusers_vae(diffusers_config, device="meta")
    theirs.load_state_dict(converted, strict=True, assign=True)
    return theirs, converted


@pytest.fixture(scope="module")
def sd15_from_diffusers() -> Iterator[tuple[AutoencoderKL, DiffusersVAE]]:
    torch.manual_seed(0)
    theirs = randomise(diffusers_vae(SD15_DIFFUSERS_CONFIG), seed=1)
    yield ours_from_diffusers(theirs, SD15_VAE), theirs
    del theirs
    gc.collect()


ODD = VAEConfig(ch=8, ch_mult=(1, 2, 3), num_res_blocks=2, norm_groups=4)  # f=4, 3 resnets per up level


@pytest.mark.parametrize("config", [TINY, ODD], ids=["tiny", "odd"])
def test_tiny_matches_diffusers(config: VAEConfig, record_property) -> None:
    theirs = randomise(diffusers_vae(vae_config_to_diffusers(config)), seed=2)
    ours = ours_from_diffusers(theirs, config)
    check(errors(ours, theirs), record_property)
    ours.double(), theirs.double()
    check(errors(ours, theirs, torch.float64), record_property, FLOAT64_TOLERANCE, "fp64")


@pytest.mark.slow
def test_sd15_matches_diffusers(sd15_from_diffusers, record_property) -> None:
    check(errors(*sd15_from_diffusers), record_property)


@pytest.mark.slow
def test_sd15_round_trip_is_exact(sd15_from_diffusers) -> None:
    state_dict = sd15_from_diffusers[1].state_dict()
    back = vae_to_diffusers(vae_from_diffusers(state_dict, SD15_VAE), SD15_VAE)
    assert list(back) == list(state_dict)
    assert all(torch.equal(back[k], v) for k, v in state_dict.items())


@pytest.mark.slow
def test_sd15_original_names_via_diffusers_converter(record_property) -> None:
    torch.manual_seed(0)
    ours = randomise(AutoencoderKL(SD15_VAE), seed=3).eval()
    theirs, converted = diffusers_from_ours(ours, SD15_DIFFUSERS_CONFIG)
    ours_converted = vae_to_diffusers(ours.state_dict(), SD15_VAE)  # our converter agrees with theirs
    assert set(ours_converted) == set(converted)
    assert all(torch.equal(ours_converted[k], v) for k, v in converted.items())
    check(errors(ours, theirs), record_property)
    ours.double(), theirs.double()
    check(errors(ours, theirs, torch.float64), record_property, FLOAT64_TOLERANCE, "fp64")
    del ours, theirs, converted, ours_converted
    gc.collect()
