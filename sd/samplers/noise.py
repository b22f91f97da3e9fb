"""Seeded Gaussian noise that draws exactly the numbers diffusers draws.

A seed reproduces an image only if every sample of noise (the initial latents and, for the stochastic
samplers, the noise of every step) comes from the same generator in the same order and shape. With one
generator per image, image i's noise comes only from generator i, so image i is the same whatever the
batch size. The draw happens on the generator's device (a CPU generator gives the same numbers on any
machine) and the result is then moved to `device`.
"""

from __future__ import annotations

import torch


def randn_tensor(
    shape: tuple[int, ...] | list[int] | torch.Size,
    generators: torch.Generator | list[torch.Generator] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """N(0, I) noise of `shape`: one draw per image with a list of generators, else one draw of the whole shape."""
    shape = tuple(shape)
    device = torch.device(device)
    if isinstance(generators, list) and len(generators) == 1:
        generators = generators[0]  # as diffusers: a one-element list is the generator itself
    if isinstance(generators, list):
        if len(generators) != shape[0]:
            raise ValueError(f"{len(generators)} generators for a batch of {shape[0]}; pass one per image")
        draws = [torch.randn((1, *shape[1:]), generator=g, device=g.device, dtype=dtype) for g in generators]
        return torch.cat(draws, dim=0).to(device)  # B x (1, C, h, w) -> (B, C, h, w)
    draw_device = generators.device if generators is not None else device
    return torch.randn(shape, generator=generators, device=draw_device, dtype=dtype).to(device)
