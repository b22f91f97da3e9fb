"""Blending two keyframes' tensors: linear, and spherical for Gaussian noise.

    lerp(a, b, t)  = (1 - t) a + t b
    slerp(a, b, t) = sin((1 - t) theta) / sin(theta) a + sin(t theta) / sin(theta) b,   cos(theta) = a.b / |a||b|

Two independent noise tensors are nearly orthogonal, so their midpoint by lerp has only ~1/sqrt(2) of the
norm a diffusion model expects, and the middle frames come out washed-out. slerp walks along the sphere
instead and keeps the norm (Shoemake 1985; used for latent walks since White 2016).
"""

from __future__ import annotations

import math

import torch


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return (1.0 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, parallel_threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation over the whole tensor; falls back to lerp when a and b are nearly parallel."""
    a64, b64 = a.double(), b.double()
    cos = (a64.flatten() @ b64.flatten() / (a64.norm() * b64.norm()).clamp_min(1e-30)).item()
    if abs(cos) > parallel_threshold:
        return lerp(a, b, t)
    theta = math.acos(max(-1.0, min(1.0, cos)))
    s = math.sin(theta)
    return ((math.sin((1.0 - t) * theta) / s) * a64 + (math.sin(t * theta) / s) * b64).to(a.dtype)


INTERPOLATIONS = {"lerp": lerp, "slerp": slerp}  # --text-interp's functions (its "off" switches at w = 0.5)
