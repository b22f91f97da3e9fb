"""Interleaved timing: A, B, A, B, ... so drift on a noisy machine hits both sides alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each callable over `repeats` rounds, after `warmup` untimed rounds."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_index in range(warmup + repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def matmul_peak_gflops(dtype, size: int = 4096, repeats: int = 3) -> float:
    """The machine's achievable matmul rate in `dtype`: the ceiling any model can approach."""
    import torch

    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    seconds = interleaved_medians({"mm": lambda: a @ b}, repeats=repeats, warmup=2)["mm"]
    return 2 * size**3 / seconds / 1e9
