"""A fixed held-out batch and the denoising loss on it: the one yardstick of every pruning sensitivity, every
recovery curve and the ReLU-attention conversion (`python -m sd.eval.denoising_loss`).

Fresh renders (a seed the training set never used) encoded by the model's own VAE, every 10th caption
emptied (the unconditional prediction that guidance uses matters too), noise drawn once and timesteps
spread evenly over the schedule, t_i = (i + 1/2) * 1000 / N. Everything is fixed, so the difference of
two losses measures the models, not sampling noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sd.data.dataset import generate
from sd.loading.checkpoint_types import Checkpoint
from sd.train.text_to_image import encode_latents

HELD_OUT_SEED = 777_777  # the shipped model trained on seed 0


@dataclass
class HeldOutBatch:
    z_t: torch.Tensor  # (N, 4, 8, 8) noised latents
    t: torch.Tensor  # (N,) timesteps
    context: torch.Tensor  # (N, 77, C) text encoder hidden states
    noise: torch.Tensor  # (N, 4, 8, 8) the target

    def __len__(self) -> int:
        return len(self.t)


@torch.no_grad()
def held_out_batch(checkpoint: Checkpoint, n: int = 256, seed: int = HELD_OUT_SEED) -> HeldOutBatch:
    data = generate(n, seed)
    mean, std = encode_latents(checkpoint.vae, data.images, torch.device("cpu"))  # (N, 4, 8, 8) each
    gen = torch.Generator().manual_seed(seed)
    z0 = (mean + std * torch.randn(mean.shape, generator=gen)) * checkpoint.vae.config.scaling_factor
    noise = torch.randn(z0.shape, generator=gen)  # (N, 4, 8, 8)
    steps = checkpoint.schedule.num_train_timesteps
    t = ((torch.arange(n) + 0.5) * steps / n).long()  # (N,) evenly over [0, steps)
    z_t = checkpoint.schedule.add_noise(z0, noise, t)  # q(z_t | z_0)
    captions = ["" if i % 10 == 9 else c for i, c in enumerate(data.captions)]
    context = checkpoint.text_encoder(checkpoint.tokenizer(captions))  # (N, 77) -> (N, 77, C)
    return HeldOutBatch(z_t.float(), t, context.float(), noise.float())


@torch.no_grad()
def denoising_loss(unet: nn.Module, batch: HeldOutBatch, chunk: int = 128) -> float:
    """Mean of || eps - eps_theta(z_t, t, text) ||^2 over the batch."""
    total = 0.0
    for i in range(0, len(batch), chunk):
        s = slice(i, i + chunk)
        eps = unet(batch.z_t[s], batch.t[s], batch.context[s])  # (b, 4, 8, 8)
        total += F.mse_loss(eps, batch.noise[s], reduction="sum").item()
    return total / batch.noise.numel()
