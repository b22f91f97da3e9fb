"""Our UNet vs diffusers' at SD 1.5 size: same weights, same inputs, one process, fp32 and bf16."""

from __future__ import annotations

from dataclasses import replace

import torch

from sd.bench.flops import meta_cost
from sd.bench.reference import reference_unet
from sd.bench.timing import interleaved_medians, matmul_peak_gflops
from sd.bf16_compute import set_bf16_compute
from sd.loading.checkpoint_types import Checkpoint
from sd.loading.strict_load import strict_load
from unet.model import UNetModel


def unet_flops(checkpoint: Checkpoint, batch: int, size: int) -> float:
    """FLOPs of one UNet call, counted on the meta device (no compute)."""
    return meta_cost(lambda: UNetModel(checkpoint.unet.config), batch, size)[1]


def time_unet(checkpoint: Checkpoint, dtype: torch.dtype, batch: int, size: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of ours and diffusers' UNet in `dtype`, same weights and inputs, interleaved.

    In bf16, ours runs twice: with fp32 compute (bf16 weights upcast per layer, fp32 inputs, as our pipeline
    runs it on a CPU without bf16 matmuls) and natively; diffusers runs natively, the way its users run bf16.
    """
    # A copy in `dtype` (fp32 shares the original's tensors); diffusers' UNet and our native twin share it.
    ours = strict_load(lambda: UNetModel(checkpoint.unet.config), checkpoint.unet.state_dict(), "bench", dtype)
    reference = reference_unet(replace(checkpoint, unet=ours))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, ours.config.in_channels, size, size, generator=gen).to(dtype)
    context = torch.randn(batch, 77, ours.config.context_dim, generator=gen).to(dtype)
    t = torch.tensor([500] * batch)
    runs = {"ours": lambda: ours(x, t, context), "diffusers": lambda: reference(x, t, context)}
    if dtype == torch.bfloat16:
        native = strict_load(lambda: UNetModel(ours.config), ours.state_dict(), "bench", dtype)
        set_bf16_compute(ours, "fp32")
        x32, context32 = x.float(), context.float()
        runs = {"ours": lambda: ours(x32, t, context32), "ours native": lambda: native(x, t, context), **runs}
        runs["diffusers"] = lambda: reference(x, t, context)
    with torch.no_grad():
        return interleaved_medians(runs, repeats)


def upcast_seconds(checkpoint: Checkpoint, repeats: int = 3) -> float:
    """What fp32 compute adds to a bf16 UNet call: one bf16 -> fp32 copy of every weight into the reused
    workspace (sd/bf16_compute.py), measured alone."""
    weights = [p.to(torch.bfloat16) for p in checkpoint.unet.parameters()]
    buffer = torch.empty(max(w.numel() for w in weights))

    def upcast() -> None:
        for w in weights:
            buffer[: w.numel()].view(w.shape).copy_(w)

    return interleaved_medians({"upcast": upcast}, repeats)["upcast"]


def bench_unet(checkpoint: Checkpoint, dtypes: list[torch.dtype], batch: int = 2, size: int = 64, repeats: int = 3):
    """Rows of (label, ours s, diffusers s, ratio, our GFLOP/s, diffusers GFLOP/s), and the matmul peaks."""
    flops = unet_flops(checkpoint, batch, size)
    peaks = {str(dtype).removeprefix("torch."): matmul_peak_gflops(dtype) for dtype in dtypes}
    rows = []
    for dtype in dtypes:
        medians = time_unet(checkpoint, dtype, batch, size, repeats)
        ref = medians["diffusers"]
        labels = {"ours": str(dtype).removeprefix("torch.")}
        if dtype == torch.bfloat16:
            labels = {"ours": "bf16 weights, ours fp32 compute", "ours native": "bf16, ours native"}
        for key, label in labels.items():
            ours = medians[key]
            rows.append((label, ours, ref, ours / ref, flops / ours / 1e9, flops / ref / 1e9))
    return flops, rows, peaks
