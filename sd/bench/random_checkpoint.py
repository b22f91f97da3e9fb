"""A full-size SD 1.5 checkpoint with random weights, for benchmarks (no real weights exist here)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from sd.loading.checkpoint_types import SD1, Checkpoint
from sd.loading.strict_load import strict_load
from sd.loading.tokenizer_files import default_tokenizer
from sd.schedule import SD15_SCHEDULE
from transformer.clip_text import SD15_TEXT, CLIPTextModel
from unet.config import SD15_UNET
from unet.model import UNetModel
from vae.autoencoder import AutoencoderKL
from vae.config import SD15_VAE


def random_weights(build, seed: int) -> torch.nn.Module:
    """Shapes from a meta-device build; N(0, 0.02) weights, ones for norm scales (fast, stable activations)."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in build().state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    state = {
        k: torch.ones(shape) if "norm" in k and k.endswith("weight") else torch.randn(shape, generator=gen) * 0.02
        for k, shape in shapes.items()
    }
    return strict_load(build, state, "random weights")


def random_sd15(seed: int = 0) -> Checkpoint:
    parts = {}
    for name, build in tqdm(
        [("text_encoder", lambda: CLIPTextModel(SD15_TEXT)), ("vae", lambda: AutoencoderKL(SD15_VAE)),
         ("unet", lambda: UNetModel(SD15_UNET))],
        desc="random SD 1.5 weights", leave=False,
    ):  # fmt: skip
        parts[name] = random_weights(build, seed)
    return Checkpoint(tokenizer=default_tokenizer(), schedule=SD15_SCHEDULE, name="random-sd15", family=SD1, **parts)
