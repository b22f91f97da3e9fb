"""A complete SD 1.x-structured checkpoint at toy size, with random weights, built in memory."""

import torch

from sd.loading.checkpoint import Checkpoint
from sd.schedule import SD15_SCHEDULE
from tests.random_weights import randomize_
from transformer.clip_text import TINY_TEXT, CLIPTextModel
from transformer.clip_tokenizer import default_tokenizer
from unet.config import TINY_UNET
from unet.model import UNetModel
from vae.autoencoder import AutoencoderKL
from vae.config import TINY_VAE


def tiny_checkpoint(seed: int = 0) -> Checkpoint:
    torch.manual_seed(seed)
    return Checkpoint(
        tokenizer=default_tokenizer(),
        text_encoder=randomize_(CLIPTextModel(TINY_TEXT), seed),
        vae=randomize_(AutoencoderKL(TINY_VAE), seed + 1),
        unet=randomize_(UNetModel(TINY_UNET), seed + 2),
        schedule=SD15_SCHEDULE,
        name="tiny",
    )


def assert_same_weights(a: Checkpoint, b: Checkpoint) -> None:
    for name in ("text_encoder", "vae", "unet"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys(), name
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{name}.{key}"
        assert getattr(a, name).config == getattr(b, name).config, name
