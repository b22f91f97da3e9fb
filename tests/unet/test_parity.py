"""Our UNet vs diffusers' UNet2DConditionModel: SD 1.5's and SD 2.1's configurations, random weights, fp32.

Two independent checks:
1. diffusers' weights, renamed to the original layout by our converter, give the same outputs.
2. Our original-layout state dict, converted by *diffusers'* single-file converter
   (`convert_ldm_unet_checkpoint`), gives exactly diffusers' tensors: our module names really are
   the original checkpoint's names, not merely names our own converter agrees with.
"""

import gc

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

from sd.loading.diffusers_unet import (
    unet_config_from_diffusers,
    unet_config_to_diffusers,
    unet_from_diffusers,
)
from tests.metrics import relative_error
from tests.random_weights import randomize_
from unet.config import SD15_UNET, SD21_UNET, UNetConfig
from unet.model import UNetModel

TOLERANCE = 1e-5  # max |ours - ref| / max |ref|

# unet/config.json of the published SD 1.5 diffusers folder (fields that matter), typed in by hand
# so the test does not depend on our own config conversion.
SD15_DIFFUSERS_UNET = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

# unet/config.json of the published SD 2.1 (768-v) diffusers folder, typed in by hand. SD 2.1-base's
# differs only in sample_size (64). "attention_head_dim" is, again, the head count: 320/5 = ... = 64 wide.
SD21_DIFFUSERS_UNET = {
    **SD15_DIFFUSERS_UNET,
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "dual_cross_attention": False,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "sample_size": 96,
    "upcast_attention": True,  # fp32 attention scores under fp16; a no-op in this fp32 test
    "use_linear_projection": True,
}


def inputs(batch: int, size: int, context_dim: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, size, size, generator=gen)
    t = torch.tensor([981, 1][:batch] + [500] * max(0, batch - 2))
    context = torch.randn(batch, 77, context_dim, generator=gen)
    return x, t, context


def test_sd15_config_converts_both_ways():
    assert unet_config_from_diffusers(SD15_DIFFUSERS_UNET) == SD15_UNET
    converted = unet_config_to_diffusers(SD15_UNET)
    assert all(converted[k] == v for k, v in SD15_DIFFUSERS_UNET.items() if k != "mid_block_scale_factor")


def test_sd21_config_converts_both_ways():
    assert unet_config_from_diffusers(SD21_DIFFUSERS_UNET) == SD21_UNET
    assert SD21_UNET.heads_at(1280) == (20, 64)
    converted = unet_config_to_diffusers(SD21_UNET)
    not_written = {"mid_block_scale_factor", "dual_cross_attention", "num_class_embeds", "only_cross_attention",
                   "upcast_attention", "sample_size"}  # defaults, or (sample_size) set by the folder export
    assert all(converted[k] == v for k, v in SD21_DIFFUSERS_UNET.items() if k not in not_written)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, diffusers_config, config, context_dim",
    [("SD 1.5", SD15_DIFFUSERS_UNET, SD15_UNET, 768), ("SD 2.1", SD21_DIFFUSERS_UNET, SD21_UNET, 1024)],
)
def test_full_size_unet_matches_diffusers(name, diffusers_config, config, context_dim):
    torch.manual_seed(0)
    ref = randomize_(UNet2DConditionModel(**diffusers_config), seed=1)
    ours = UNetModel(config).eval()
    ours.load_state_dict(unet_from_diffusers(ref.state_dict(), config), strict=True, assign=True)

    x, t, context = inputs(batch=2, size=16, context_dim=context_dim)  # 16x16 latents: 3 downsamplings -> 2x2
    with torch.no_grad():
        error = relative_error(ours(x, t, context), ref(x, t, context).sample)
    print(f"{name} UNet max relative error: {error:.2e}")
    assert error <= TOLERANCE

    # Check 2: diffusers' own converter, fed our original-layout names, lands on diffusers' tensors.
    original = {f"model.diffusion_model.{k}": v for k, v in ours.state_dict().items()}
    converted = convert_ldm_unet_checkpoint(original, diffusers_config)
    reference = ref.state_dict()
    assert converted.keys() == reference.keys()
    assert all(torch.equal(converted[k], reference[k]) for k in reference)
    del ref, ours, original, converted, reference
    gc.collect()


@pytest.mark.parametrize(
    "config, size",
    [
        # attention skipped at the top level, as the mobile variant does; odd latent size 13
        (UNetConfig(model_channels=32, channel_mult=(1, 2, 2), attention_resolutions=(4, 2), num_heads=4,
                    context_dim=64, norm_groups=8), 13),
        # head width fixed instead of head count (SD 2.x style), linear projections, depth 2
        (UNetConfig(model_channels=64, channel_mult=(1, 2), attention_resolutions=(2, 1), num_heads=-1,
                    num_head_channels=16, transformer_depth=2, context_dim=48, use_linear_in_transformer=True,
                    norm_groups=16, num_res_blocks=1), 10),
    ],
)  # fmt: skip
def test_small_configs_match_diffusers(config: UNetConfig, size: int):
    d = unet_config_to_diffusers(config)
    assert unet_config_from_diffusers(d) == config
    torch.manual_seed(0)
    ref = randomize_(UNet2DConditionModel(**{k: v for k, v in d.items() if not k.startswith("_")}), seed=3)
    ours = UNetModel(config).eval()
    ours.load_state_dict(unet_from_diffusers(ref.state_dict(), config), strict=True)
    x, t, context = inputs(batch=3, size=size, context_dim=config.context_dim)
    with torch.no_grad():
        out = ours(x, t, context)
        assert out.shape == x.shape
        assert relative_error(out, ref(x, t, context).sample) <= TOLERANCE


@pytest.mark.parametrize("config, count", [(SD15_UNET, 859_520_964), (SD21_UNET, 865_910_724)])
def test_parameter_count_is_the_published_one(config, count):
    with torch.device("meta"):
        model = UNetModel(config)
    assert sum(p.numel() for p in model.parameters()) == count


@pytest.mark.parametrize("form", ["scalar", "0-d tensor", "(1,)", "(B,) all equal"])
def test_shared_timestep_forms_agree(form: str):
    """A timestep shared by the batch may come as a number, a 0-d or (1,) tensor (embedded once: the same bits),
    or a (B,) tensor of equal values (embedded per row: equal within round-off; the model does not probe it)."""
    config = UNetConfig(model_channels=32, channel_mult=(1, 2), attention_resolutions=(2,), num_heads=2,
                        context_dim=16, norm_groups=8, num_res_blocks=1)  # fmt: skip
    model = randomize_(UNetModel(config).eval(), seed=1)
    x, _, context = inputs(batch=3, size=8, context_dim=16)
    timesteps = {"scalar": 500, "0-d tensor": torch.tensor(500), "(1,)": torch.tensor([500]),
                 "(B,) all equal": torch.tensor([500] * 3)}[form]  # fmt: skip
    with torch.no_grad():
        per_sample = model(x, torch.tensor([500, 500, 499]), context)[:2]
        shared = model(x, timesteps, context)
        if form == "(B,) all equal":
            assert relative_error(shared, model(x, 500, context)) <= TOLERANCE
        else:
            assert torch.equal(shared, model(x, 500, context))
        assert relative_error(shared[:2], per_sample) <= TOLERANCE
