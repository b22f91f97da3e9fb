"""Our UNet vs diffusers' at SD 1.5 size: same weights, same inputs, one process, fp32 and bf16."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from sd.bench.reference import reference_unet
from sd.bench.timing import interleaved_medians, matmul_peak_gflops
from sd.loading.checkpoint import Checkpoint
from sd.loading.strict_load import strict_load
from unet.model import UNetModel


def unet_flops(checkpoint: Checkpoint, batch: int, size: int) -> float:
    """FLOPs of one UNet call, counted on the meta device (no compute)."""
    config = checkpoint.unet.config
    with torch.device("meta"):
        model = UNetModel(config)
        x = torch.empty(batch, config.in_channels, size, size)
        context = torch.empty(batch, 77, config.context_dim)
        with FlopCounterMode(display=False) as counter:
            model(x, torch.zeros(batch), context)
    return counter.get_total_flops()


def time_unet(checkpoint: Checkpoint, dtype: torch.dtype, batch: int, size: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of ours and diffusers' UNet in `dtype`, same weights and inputs."""
    # A copy in `dtype` (fp32 shares the original's tensors); diffusers' UNet then shares the copy's.
    ours = strict_load(lambda: UNetModel(checkpoint.unet.config), checkpoint.unet.state_dict(), "bench", dtype)
    reference = reference_unet(replace(checkpoint, unet=ours))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, ours.config.in_channels, size, size, generator=gen).to(dtype)
    context = torch.randn(batch, 77, ours.config.context_dim, generator=gen).to(dtype)
    t = torch.tensor([500] * batch)
    with torch.no_grad():
        runs = {"ours": lambda: ours(x, t, context), "diffusers": lambda: reference(x, t, context)}
        return interleaved_medians(runs, repeats)


def bench_unet(checkpoint: Checkpoint, dtypes: list[torch.dtype], batch: int = 2, size: int = 64, repeats: int = 3):
    """Rows of (dtype, ours s, diffusers s, ratio, our GFLOP/s, diffusers GFLOP/s, matmul peak GFLOP/s)."""
    flops = unet_flops(checkpoint, batch, size)
    rows = []
    for dtype in dtypes:
        medians = time_unet(checkpoint, dtype, batch, size, repeats)
        ours, ref = medians["ours"], medians["diffusers"]
        peak = matmul_peak_gflops(dtype)
        name = str(dtype).removeprefix("torch.")
        rows.append((name, ours, ref, ours / ref, flops / ours / 1e9, flops / ref / 1e9, peak))
    return flops, rows
