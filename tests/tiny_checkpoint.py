"""Complete SD 1.x- and SD 2.x-structured checkpoints at toy size, with random weights, built in memory."""

import torch

from sd.loading.checkpoint_types import SD1, SD2, Checkpoint
from sd.loading.tokenizer_files import default_tokenizer
from sd.schedule import SD15_SCHEDULE
from tests.random_weights import randomize_
from transformer.clip_text import TINY_TEXT, CLIPTextConfig, CLIPTextModel
from transformer.clip_tokenizer import OPEN_CLIP_PAD_TOKEN, CLIPTokenizer
from unet.config import TINY_UNET, UNetConfig
from unet.model import UNetModel
from vae.autoencoder import AutoencoderKL
from vae.config import TINY_VAE, VAEConfig

# SD 2.x's structure at toy size: a GELU text tower whose last layer is stored but skipped, 64-wide UNet
# heads with linear projections. Widths are multiples of 64 and 32 so that a file of it without stored
# configs is read back by shape inference exactly (SD 2.x's head width, 32 GroupNorm groups).
TINY_SD2_TEXT = CLIPTextConfig(
    hidden_size=128, intermediate_size=512, num_hidden_layers=3, num_attention_heads=2, hidden_act="gelu",
    skip_last_layers=1,
)  # fmt: skip
TINY_SD2_UNET = UNetConfig(
    model_channels=64, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2, 1), num_heads=-1,
    num_head_channels=64, context_dim=128, use_linear_in_transformer=True,
)  # fmt: skip
TINY_SD2_VAE = VAEConfig(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1, resolution=64)


def tiny_checkpoint(seed: int = 0) -> Checkpoint:
    return random_checkpoint(seed, default_tokenizer(), TINY_TEXT, TINY_VAE, TINY_UNET, name="tiny", family=SD1)


def tiny_sd2_checkpoint(seed: int = 0, prediction_type: str = "v_prediction") -> Checkpoint:
    tokenizer = default_tokenizer(OPEN_CLIP_PAD_TOKEN)
    return random_checkpoint(seed, tokenizer, TINY_SD2_TEXT, TINY_SD2_VAE, TINY_SD2_UNET, name="tiny-sd2", family=SD2,
                             prediction_type=prediction_type)  # fmt: skip


def random_checkpoint(
    seed: int, tokenizer: CLIPTokenizer, text: CLIPTextConfig, vae: VAEConfig, unet: UNetConfig, **facts
) -> Checkpoint:
    """The three models of these configs with random weights, seeded `seed`, `seed + 1` and `seed + 2`, and
    SD 1.5's schedule; `facts`: the rest of the Checkpoint (name, family, ...)."""
    torch.manual_seed(seed)
    return Checkpoint(
        tokenizer=tokenizer,
        text_encoder=randomize_(CLIPTextModel(text), seed),
        vae=randomize_(AutoencoderKL(vae), seed + 1),
        unet=randomize_(UNetModel(unet), seed + 2),
        schedule=SD15_SCHEDULE,
        **facts,
    )


def assert_same_weights(a: Checkpoint, b: Checkpoint) -> None:
    for name in ("text_encoder", "vae", "unet"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys(), name
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{name}.{key}"
        assert getattr(a, name).config == getattr(b, name).config, name
