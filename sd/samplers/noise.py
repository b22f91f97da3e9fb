"""Seeded Gaussian noise that draws exactly the numbers diffusers draws.

A seed reproduces an image only if every sample of noise (the initial latents and, for the stochastic
samplers, the noise of every step) comes from the same generator in the same order and shape. With one
generator per image, image i's noise comes only from generator i, so image i is the same whatever the
batch size. The draw happens on the generator's device (a CPU generator gives the same numbers on any
machine) and the result is then moved to `device`.

Instead of generators, a sampler may be handed an InterpolatedNoise: image i's k-th draw is then
mix(a_i's k-th draw, b_i's k-th draw, w_i) of two generators, e.g. slerp of two keyframes' generators, so that
the noise a stochastic sampler (LCM, TCD) injects into a GIF's in-between frame moves between its keyframes'
the way the starting noise does, instead of flickering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class InterpolatedNoise:
    """Per image of a batch, two generators and a weight; every draw mixes the two generators' draws.

    The generators advance exactly as they would drawing alone (one (1, ...) draw each per call), so with
    generators seeded and advanced like keyframes a's and b's, the k-th draw of an in-between is
    mix(a's k-th draw, b's k-th draw, w). `mix` is the caller's (sd.gif.interpolation.slerp for noise);
    mix(x, y, 0) should be x, so that a keyframe's own draws come back unchanged.
    """

    a: list[torch.Generator]
    b: list[torch.Generator]
    weights: list[float]
    mix: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]

    def __post_init__(self) -> None:
        if not len(self.a) == len(self.b) == len(self.weights):
            raise ValueError(f"{len(self.a)} and {len(self.b)} generators for {len(self.weights)} weights")

    def randn(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        if shape[0] != len(self.weights):
            raise ValueError(f"{len(self.weights)} interpolated generators for a batch of {shape[0]}")
        one = (1, *shape[1:])
        draws = [  # (1, C, h, w) each: the two generators' draws, mixed
            self.mix(randn_tensor(one, ga, dtype, device), randn_tensor(one, gb, dtype, device), w)
            for ga, gb, w in zip(self.a, self.b, self.weights, strict=True)
        ]
        return torch.cat(draws, dim=0)  # B x (1, C, h, w) -> (B, C, h, w)


Generators = torch.Generator | list[torch.Generator] | InterpolatedNoise | None
"""What a sampler's step draws its noise from: see randn_tensor."""


def randn_tensor(
    shape: tuple[int, ...] | list[int] | torch.Size,
    generators: Generators = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """N(0, I) noise of `shape`: one draw per image with a list of generators, else one draw of the whole shape;
    an InterpolatedNoise mixes two generators' draws per image."""
    shape = tuple(shape)
    device = torch.device(device)
    if isinstance(generators, InterpolatedNoise):
        return generators.randn(shape, dtype, device)
    if isinstance(generators, list) and len(generators) == 1:
        generators = generators[0]  # as diffusers: a one-element list is the generator itself
    if isinstance(generators, list):
        if len(generators) != shape[0]:
            raise ValueError(f"{len(generators)} generators for a batch of {shape[0]}; pass one per image")
        draws = [torch.randn((1, *shape[1:]), generator=g, device=g.device, dtype=dtype) for g in generators]
        return torch.cat(draws, dim=0).to(device)  # B x (1, C, h, w) -> (B, C, h, w)
    draw_device = generators.device if generators is not None else device
    return torch.randn(shape, generator=generators, device=draw_device, dtype=dtype).to(device)
