"""Intersection over union of the predicted and true shape pixels, |P & T| / |P | T|, per image."""

from __future__ import annotations

import torch


def foreground_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N,) IoU of the foreground class for masks (N, H, W) in {0, 1}; 1 when both are empty."""
    p, t = pred.bool().flatten(1), target.bool().flatten(1)  # (N, H*W)
    inter, union = (p & t).sum(1).float(), (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def mean_iou(pred: torch.Tensor, target: torch.Tensor) -> float:
    """The mean over classes (background, shape) of each class's IoU per image, averaged over images."""
    return 0.5 * (foreground_iou(pred, target) + foreground_iou(1 - pred, 1 - target)).mean().item()
