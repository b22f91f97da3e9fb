"""VAE key and config conversion, original layout <-> diffusers (on the meta device: no compute)."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL as DiffusersVAE

from sd.errors import UserError
from sd.loading.diffusers_vae import (
    vae_config_from_diffusers,
    vae_config_to_diffusers,
    vae_from_diffusers,
    vae_prefix_pairs,
    vae_to_diffusers,
)
from tests.vae.test_parity import SD15_DIFFUSERS_CONFIG
from vae.autoencoder import AutoencoderKL
from vae.config import SD15_VAE, VAEConfig

CONFIGS = {
    "sd15": SD15_VAE,
    "tiny": VAEConfig(ch=16, num_res_blocks=1, norm_groups=8),
    "odd": VAEConfig(ch=8, ch_mult=(1, 2, 3), num_res_blocks=3, z_channels=3, embed_dim=3, norm_groups=4),
    "one_level": VAEConfig(ch=32, ch_mult=(1,), num_res_blocks=1, norm_groups=4),
}


def models(config: VAEConfig) -> tuple[AutoencoderKL, DiffusersVAE]:
    with torch.device("meta"):
        return AutoencoderKL(config), DiffusersVAE.from_config(vae_config_to_diffusers(config))


def shapes(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_keys_and_shapes_match_both_ways(config: VAEConfig) -> None:
    ours, theirs = models(config)
    assert shapes(vae_to_diffusers(ours.state_dict(), config)) == shapes(theirs.state_dict())
    assert shapes(vae_from_diffusers(theirs.state_dict(), config)) == shapes(ours.state_dict())


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_pairs_name_every_module_with_weights_once(config: VAEConfig) -> None:
    ours, theirs = models(config)
    pairs = vae_prefix_pairs(config)

    def with_weights(model: torch.nn.Module) -> list[str]:
        return [name for name, m in model.named_modules() if list(m.parameters(recurse=False))]

    assert sorted(o for o, _ in pairs) == sorted(with_weights(ours))
    assert sorted(d for _, d in pairs) == sorted(with_weights(theirs))


def test_round_trip_is_exact_and_reshapes_attention() -> None:
    config = CONFIGS["tiny"]
    torch.manual_seed(0)
    original = AutoencoderKL(config).state_dict()
    diffusers = vae_to_diffusers(original, config)
    assert diffusers["decoder.mid_block.attentions.0.to_out.0.weight"].shape == (64, 64)
    same = {  # diffusers' up_blocks run lowest resolution first; ldm's up.0 is the highest
        "decoder.up_blocks.0.resnets.0.conv1.weight": "decoder.up.3.block.0.conv1.weight",
        "encoder.down_blocks.1.resnets.0.conv_shortcut.weight": "encoder.down.1.block.0.nin_shortcut.weight",
    }
    assert all(torch.equal(diffusers[d], original[o]) for d, o in same.items())
    back = vae_from_diffusers(diffusers, config)
    assert list(back) == list(original) and all(torch.equal(back[k], v) for k, v in original.items())


def test_legacy_diffusers_attention_names_load() -> None:
    """Folders converted before diffusers 0.14 (SD 1.5's vae/) call them query/key/value/proj_attn."""
    config = CONFIGS["tiny"]
    torch.manual_seed(0)
    current = vae_to_diffusers(AutoencoderKL(config).state_dict(), config)
    old = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    legacy = {}
    for key, value in current.items():
        for new, name in old.items():
            key = key.replace(f"attentions.0.{new}.", f"attentions.0.{name}.")
        legacy[key] = value
    assert legacy.keys() != current.keys()
    converted, expected = vae_from_diffusers(legacy, config), vae_from_diffusers(current, config)
    assert list(converted) == list(expected)
    assert all(torch.equal(converted[k], v) for k, v in expected.items())


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_config_round_trip(config: VAEConfig) -> None:
    d = vae_config_to_diffusers(config)
    assert vae_config_from_diffusers(d) == config
    with torch.device("meta"):
        built = DiffusersVAE.from_config(d).config  # diffusers accepts it and keeps every value
    for key, value in d.items():
        if not key.startswith("_"):
            assert (list(built[key]) if isinstance(value, list) else built[key]) == value, key


def test_sd15_config_is_the_published_one() -> None:
    assert vae_config_to_diffusers(SD15_VAE) == {"_class_name": "AutoencoderKL", **SD15_DIFFUSERS_CONFIG}


def test_missing_keys_take_diffusers_defaults() -> None:
    config = vae_config_from_diffusers({"_class_name": "AutoencoderKL"})
    with torch.device("meta"):
        theirs = DiffusersVAE.from_config({})
    ours = AutoencoderKL(config)
    assert shapes(vae_from_diffusers(theirs.state_dict(), config)) == shapes(ours.state_dict())


UNSUPPORTED = {
    "class": {"_class_name": "AutoencoderTiny"},
    "activation": {"act_fn": "gelu"},
    "sd3_shift": {"latent_channels": 16, "shift_factor": 0.0609, "use_quant_conv": False},
    "no_mid_attention": {"mid_block_add_attention": False},
    "block_type": {"down_block_types": ["AttnDownEncoderBlock2D"]},
    "block_count": {"up_block_types": ["UpDecoderBlock2D"] * 2},
    "channels": {"block_out_channels": [128, 192], "down_block_types": ["DownEncoderBlock2D"] * 2,
                 "up_block_types": ["UpDecoderBlock2D"] * 2},
}


@pytest.mark.parametrize("overrides", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_unsupported_diffusers_configs_raise_user_error(overrides: dict) -> None:
    with pytest.raises(UserError, match="^unsupported VAE config: [^\n]+$"):
        vae_config_from_diffusers({**vae_config_to_diffusers(SD15_VAE), **overrides})


@pytest.mark.parametrize("config", [VAEConfig(ch_mult=(2, 4)), VAEConfig(embed_dim=8)])
def test_configs_diffusers_cannot_express_raise_user_error(config: VAEConfig) -> None:
    with pytest.raises(UserError):
        vae_config_to_diffusers(config)
