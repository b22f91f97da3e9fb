"""The three educational trainers run end to end and record their runs alike (sd/train/run_record.py)."""

from __future__ import annotations

import importlib
import json
import time
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sd.train import run_record
from sd.train.model_file import load_model
from sd.train.run_record import RunClock
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
    args = trainer.parse_args(["--steps", "3", "--train-size", "64", "--eval-size", "16", "--out",
                               str(tmp_path / "run"), "--weights", str(tmp_path / "shipped.safetensors")])  # fmt: skip
    wall, cpu = time.perf_counter(), time.process_time()
    result = trainer.train(args)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["parameters"] == sum(p.numel() for p in result["model"].parameters())
    assert metrics["batch"] == args.batch and metrics["threads"] == torch.get_num_threads()
    # seconds, rounded to 0.1, of no more than the call took (the clock starts inside train)
    assert 0 <= metrics["train_seconds"] <= round(wall, 1) + 0.1, (metrics["train_seconds"], wall)
    assert 0 <= metrics["train_cpu_seconds"] <= round(cpu, 1) + 0.1, (metrics["train_cpu_seconds"], cpu)
    model_cls, config_cls = TRAINERS[module]
    for path in (tmp_path / "run" / "model.safetensors", tmp_path / "shipped.safetensors"):
        loaded = load_model(model_cls, config_cls, path)
        assert loaded.state_dict().keys() == result["model"].state_dict().keys()


def test_run_clock_counts_wall_and_cpu_seconds_from_its_start(monkeypatch):
    now = {"wall": 100.0, "cpu": 5.0}
    clock_module = SimpleNamespace(perf_counter=lambda: now["wall"], process_time=lambda: now["cpu"])
    monkeypatch.setattr(run_record, "time", clock_module)
    clock = RunClock()
    now.update(wall=112.31, cpu=30.02)
    assert clock.facts(nn.Linear(3, 2), steps=7, batch=4) == {
        "steps": 7, "batch": 4, "train_seconds": 12.3, "train_cpu_seconds": 25.0,
        "threads": torch.get_num_threads(), "parameters": 3 * 2 + 2,
    }  # fmt: skip
