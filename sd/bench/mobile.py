"""The mobile UNet (MobileDiffusion, Zhao et al. 2023) against the standard one: parameters, FLOPs, latency.

Two scales, each a table of rows "one change at a time" from the standard config plus the full mobile
preset: SD 1.5 (random weights, batch 2, 64x64 latents) and the embedded tiny model (batch 2, 8x8).
FLOPs are counted by torch.utils.flop_counter on the meta device (no compute; a multiply-add is 2 FLOPs).
Latency: each row is timed interleaved with the standard UNet in the same process (A, B, A, B, ...),
so the ratio is robust to a machine whose load drifts; medians after a warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from tqdm.auto import tqdm

from sd.bench.flops import meta_cost
from sd.bench.timing import interleaved_medians
from unet.config import MOBILE_SD_UNET, MOBILE_TINY_UNET, SD15_UNET, TINY_UNET, UNetConfig
from unet.model import UNetModel


@dataclass
class Row:
    name: str
    config: UNetConfig
    headline: bool = False  # the full preset: timed with more rounds than the one-change rows
    params: int = 0
    flops: float = 0.0
    seconds: float = 0.0  # median per call
    base_seconds: float = 0.0  # median of the standard UNet, timed interleaved with this row


def sd_scale_rows() -> list[Row]:
    """SD 1.5, each mobile switch alone on it, then mobile-sd."""
    sd = SD15_UNET
    return [
        Row("SD 1.5 UNet", sd),
        Row("shared K/V in self-attention", replace(sd, shared_kv=True)),
        Row("separable convs below the top level", replace(sd, separable_levels=(1, 2, 3))),
        Row("SwiGLU gate instead of GEGLU", replace(sd, ff_activation="silu")),
        Row("feed-forward 6x instead of 8x", replace(sd, ff_mult=3)),
        Row("ReLU attention", replace(sd, attention="relu")),
        Row("cross-attention only at 64x64", replace(sd, cross_attention_only=(1,))),
        Row("fewer ResBlocks (1, 1, 2, 2)", replace(sd, num_res_blocks=(1, 1, 2, 2))),
        Row("3 levels 320/640/960, 2 blocks at 16x16",
            replace(sd, channel_mult=(1, 2, 3), transformer_depth=(1, 1, 2))),
        Row("mobile-sd (preset: all but ReLU)", MOBILE_SD_UNET, headline=True),
        Row("mobile-sd + ReLU attention", replace(MOBILE_SD_UNET, attention="relu")),
    ]


def tiny_scale_rows() -> list[Row]:
    t = TINY_UNET
    return [
        Row("standard tiny UNet", t),
        Row("shared K/V in self-attention", replace(t, shared_kv=True)),
        Row("separable convs at 4x4", replace(t, separable_levels=(1,))),
        Row("SwiGLU gate instead of GEGLU", replace(t, ff_activation="silu")),
        Row("feed-forward 6x instead of 8x", replace(t, ff_mult=3)),
        Row("ReLU attention", replace(t, attention="relu")),
        Row("cross-attention only at 8x8", replace(t, cross_attention_only=(1,))),
        Row("mobile-tiny (preset: all but ReLU)", MOBILE_TINY_UNET, headline=True),
        Row("mobile-tiny + ReLU attention", replace(MOBILE_TINY_UNET, attention="relu")),
    ]


def count_cost(config: UNetConfig, batch: int, size: int) -> tuple[int, float]:
    """(parameters, FLOPs of one call), on the meta device: nothing is allocated or computed."""
    return meta_cost(lambda: UNetModel(config), batch, size)


def time_pair(base: UNetModel, model: UNetModel, batch: int, size: int, repeats: int, calls: int):
    """Median seconds per call of (base, model), interleaved, after one untimed round of each."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, base.config.in_channels, size, size, generator=gen)
    context = torch.randn(batch, 77, base.config.context_dim, generator=gen)
    models = {"base": base, "model": model}
    with torch.no_grad():
        runs = {name: (lambda m=m: [m(x, 500.0, context) for _ in range(calls)]) for name, m in models.items()}
        medians = interleaved_medians(runs, repeats)  # seconds per round of `calls` calls
    return medians["base"] / calls, medians["model"] / calls


def measure(
    rows: list[Row], batch: int, size: int, repeats: int, calls: int, ablation_repeats: int = 1, latency: bool = True
) -> list[Row]:
    """Fill in params, FLOPs and (interleaved with rows[0]) latency; builds one extra model at a time.

    Headline rows (the full presets) get `repeats` timed rounds and run first, the one-change rows
    `ablation_repeats` (0: not timed; SD-scale calls take seconds each on 2 cores, minutes on a loaded machine).
    """
    for row in rows:
        row.params, row.flops = count_cost(row.config, batch, size)
    if not latency:
        return rows
    torch.manual_seed(0)
    base = UNetModel(rows[0].config).eval()
    timed = [row for row in rows[1:] if row.headline or ablation_repeats > 0]  # not the base against itself
    for row in tqdm(sorted(timed, key=lambda r: not r.headline), desc=f"latency at {size}x{size}", leave=False):
        model = UNetModel(row.config).eval()
        rounds = repeats if row.headline else ablation_repeats
        row.base_seconds, row.seconds = time_pair(base, model, batch, size, rounds, calls)
        del model
    first = next(r for r in rows if r.headline)  # the standard UNet's own row: its median from the first preset's pair
    rows[0].seconds = rows[0].base_seconds = first.base_seconds
    return rows


def table(rows: list[Row], title: str) -> str:
    base = rows[0]
    lines = [
        f"| {title} | params (M) | vs base | GFLOP / call | vs base | latency s | vs base (interleaved) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        latency = f"{r.seconds:.3f} | {r.seconds / r.base_seconds:.2f}x" if r.seconds else "- | -"
        lines.append(
            f"| {r.name} | {r.params / 1e6:.1f} | {r.params / base.params:.2f}x | {r.flops / 1e9:.4g} | "
            f"{r.flops / base.flops:.2f}x | {latency} |"
        )
    return "\n".join(lines)


def plot(scales: dict[str, list[Row]], path) -> None:
    """Horizontal bars: params, FLOPs and latency of every row as a fraction of its scale's standard UNet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(scales), figsize=(7 * len(scales), 6), squeeze=False)
    for ax, (title, rows) in zip(axes[0], scales.items(), strict=True):
        names = [r.name for r in rows][::-1]
        ys = torch.arange(len(rows)).float()
        series = {
            "params": [r.params / rows[0].params for r in rows],
            "FLOPs": [r.flops / rows[0].flops for r in rows],
            "latency": [r.seconds / r.base_seconds if r.seconds else 0.0 for r in rows],
        }
        for i, (label, values) in enumerate(series.items()):
            ax.barh(ys + (i - 1) * 0.27, values[::-1], height=0.27, label=label)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(ys, names)
        ax.set_xlabel("fraction of the standard UNet")
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
