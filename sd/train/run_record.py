"""What an educational training run leaves behind: its measured cost, its figures and its weights.

The three educational trainers (U-Net segmentation, Transformer translation, plain VAE) record a run the same
way, so their metrics.json files compare: wall and CPU seconds (CPU over wall shows how many cores the run
really used), threads and parameters next to each model's own figures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from sd.train.model_file import save_model


class RunClock:
    """Wall and CPU time since the clock was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def facts(self, model: nn.Module, steps: int, batch: int) -> dict:
        return {"steps": steps, "batch": batch, "train_seconds": round(time.perf_counter() - self.wall, 1),
                "train_cpu_seconds": round(time.process_time() - self.cpu, 1), "threads": torch.get_num_threads(),
                "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip


def save_run(model: nn.Module, config: object, metrics: dict, out: Path, weights: Path | None) -> None:
    """Print and write OUT/metrics.json, and the weights to OUT/model.safetensors (and to `weights` if given)."""
    print(json.dumps(metrics, indent=1))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    save_model(model, config, out / "model.safetensors")
    if weights is not None:
        save_model(model, config, weights)
