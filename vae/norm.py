"""The one normalisation the autoencoder uses (ldm's `Normalize`)."""

from __future__ import annotations

from torch import nn


def normalize(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with eps=1e-6, as ldm (not torch's default 1e-5): the trained weights expect it."""
    return nn.GroupNorm(groups, channels, eps=1e-6)
