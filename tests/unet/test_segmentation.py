"""The segmentation U-Net: shapes through the levels, IoU, a few steps lower the loss, the shipped weights' IoU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sd.train.model_file import load_model
from unet.segmentation.data import held_out_data, segmentation_data
from unet.segmentation.iou import foreground_iou, mean_iou
from unet.segmentation.model import SegmentationUNet, SegmentationUNetConfig
from unet.segmentation.train import loss_fn, predict

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "unet-segmentation.safetensors"


def test_shapes_through_the_levels() -> None:
    model = SegmentationUNet(SegmentationUNetConfig(base_channels=4, depth=3))
    features: list[torch.Tensor] = []
    out = model(torch.zeros(2, 3, 64, 64), features)
    assert out.shape == (2, 2, 64, 64)
    # contracting 64, 32, 16; bottleneck 8; expanding 16, 32, 64 (channels halve on the way up)
    assert [tuple(f.shape[1:]) for f in features] == [
        (4, 64, 64), (8, 32, 32), (16, 16, 16), (32, 8, 8), (16, 16, 16), (8, 32, 32), (4, 64, 64)
    ]  # fmt: skip


def test_iou_values() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2, :2] = 1  # 4 shape pixels
    pred = torch.zeros_like(target)
    pred[0, :2, :1] = 1  # 2 of them, nothing else
    assert foreground_iou(pred, target).item() == pytest.approx(0.5)
    assert mean_iou(pred, target) == pytest.approx(0.5 * (0.5 + 12 / 14))
    assert foreground_iou(target, target).item() == 1.0


def test_masks_come_from_the_generator() -> None:
    x, mask = segmentation_data(4, seed=0)
    assert x.shape == (4, 3, 64, 64) and mask.shape == (4, 64, 64) and set(mask.unique().tolist()) == {0, 1}
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert 0.02 < mask.float().mean() < 0.3  # a shape covers part of each image


def test_few_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = SegmentationUNet(SegmentationUNetConfig(base_channels=4)).train()
    x, mask = segmentation_data(8, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = loss_fn(model, x, mask, shape_weight=3.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.skipif(not WEIGHTS.exists(), reason="weights/unet-segmentation.safetensors not shipped")
def test_shipped_weights_reach_iou_target() -> None:
    model = load_model(SegmentationUNet, SegmentationUNetConfig, WEIGHTS)
    x, mask = held_out_data(64, seed=7)  # fresh renders and held-out colour-shape pairs
    pred = predict(model, x)
    assert foreground_iou(pred, mask).mean().item() >= 0.9
    assert WEIGHTS.stat().st_size < 2 * 2**20
