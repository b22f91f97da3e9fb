"""The three educational trainers run end to end and record their runs alike (sd/train/run_record.py)."""

from __future__ import annotations

import importlib
import json

import pytest

from sd.train.model_file import load_model
from transformer.translation.model import Transformer, TranslationConfig
from unet.segmentation.model import SegmentationUNet, SegmentationUNetConfig
from vae.plain.model import PlainVAE, PlainVAEConfig

TRAINERS = {
    "unet.segmentation.train": (SegmentationUNet, SegmentationUNetConfig),
    "vae.plain.train": (PlainVAE, PlainVAEConfig),
    "transformer.translation.train": (Transformer, TranslationConfig),
}


@pytest.mark.parametrize("module", TRAINERS)
def test_trainer_writes_metrics_and_weights(module, tmp_path):
    trainer = importlib.import_module(module)
    args = ["--steps", "3", "--train-size", "64", "--eval-size", "16", "--out", str(tmp_path / "run"),
            "--weights", str(tmp_path / "shipped.safetensors")]  # fmt: skip
    result = trainer.train(trainer.parse_args(args))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["parameters"] == sum(p.numel() for p in result["model"].parameters())
    assert metrics["train_seconds"] >= 0 and metrics["threads"] >= 1
    model_cls, config_cls = TRAINERS[module]
    for path in (tmp_path / "run" / "model.safetensors", tmp_path / "shipped.safetensors"):
        loaded = load_model(model_cls, config_cls, path)
        assert loaded.state_dict().keys() == result["model"].state_dict().keys()
