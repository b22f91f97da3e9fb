"""The error measure every parity test states its tolerance in."""

import torch


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours - reference| / max |reference|: scale-free, so one tolerance fits every layer."""
    ours, reference = ours.detach().double(), reference.detach().double()
    assert ours.shape == reference.shape, f"shape {tuple(ours.shape)} != {tuple(reference.shape)}"
    return ((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-30)).item()
