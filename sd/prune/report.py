"""The sensitivity analysis as a ranked markdown table and a plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from sd.atomic_output import atomic_output
from sd.prune.allocation import Saved
from sd.prune.sensitivity import Sensitivity
from unet.pruned import PrunePlan

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KIND_COLOURS = {"ResBlock": "tab:blue", "SpatialTransformer": "tab:purple", "attn1": "tab:orange",
                "attn2": "tab:red", "ff": "tab:green"}  # fmt: skip


def ranked_table(sensitivity: Sensitivity, saved: Saved, adherence: dict[str, float] | None = None) -> str:
    """Whole layers dropped, least harmful first, then each layer's curve."""
    adherence = adherence or {}
    rows = sorted(sensitivity.layers, key=lambda e: e.drop)
    lines = [
        f"Denoising loss on the held-out batch (n={sensitivity.batch_size}): {sensitivity.base_loss:.5f} unpruned.",
        "",
        "| rank | layer dropped | kind | params | loss increase | increase per 100k params | adherence |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rank, e in enumerate(rows, 1):
        n = saved(PrunePlan(drop=(e.layer.path,)))
        shown = f"{adherence[e.layer.path]:.1%}" if e.layer.path in adherence else ""
        lines.append(f"| {rank} | {e.layer.path} | {e.layer.kind} | {n:,} | {e.drop:+.5f} | "
                     f"{e.drop / n * 1e5:+.5f} | {shown} |")  # fmt: skip
    lines += ["", "Channel groups removed together (the k least important by the Taylor estimate):", "",
              "| layer | kind | groups | loss increase at 1/8, 2/8, ... 7/8 of its groups removed | dropped |",
              "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for e in sensitivity.layers:
        if e.curve:
            curve = ", ".join(f"{d:+.4f}" for _, d in e.curve)
            lines.append(f"| {e.layer.path} | {e.layer.kind} | {e.layer.groups} | {curve} | {e.drop:+.4f} |")
    return "\n".join(lines) + "\n"


def plot_sensitivity(sensitivity: Sensitivity, path: Path, overwrite: bool = True) -> None:
    rows = sorted(sensitivity.layers, key=lambda e: e.drop)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, max(6, 0.22 * len(rows))))
    left.barh(range(len(rows)), [max(e.drop, 1e-6) for e in rows],
              color=[KIND_COLOURS[e.layer.kind] for e in rows])  # fmt: skip
    left.set_yticks(range(len(rows)), [e.layer.path.replace("transformer_blocks.0.", "") for e in rows], fontsize=7)
    left.invert_yaxis()
    left.set_xscale("log")
    left.set_xlabel("denoising loss increase when dropped (log; least harmful at the top)")
    left.set_title(f"layers ranked (unpruned loss {sensitivity.base_loss:.4f})")
    for kind, colour in KIND_COLOURS.items():
        left.bar(0, 0, color=colour, label=kind)
    left.legend(fontsize=8, loc="upper right")
    for e in sensitivity.layers:
        if e.curve:
            xs = [0.0] + [k / e.layer.groups for k, _ in e.curve] + [1.0]
            ys = [0.0] + [d for _, d in e.curve] + [e.drop]
            right.plot(xs, ys, color=KIND_COLOURS[e.layer.kind], alpha=0.6, marker=".")
    right.set_yscale("symlog", linthresh=1e-4)
    right.set_xlabel("fraction of the layer's channel groups removed (1 = layer dropped)")
    right.set_ylabel("denoising loss increase (symlog: linear below 1e-4)")
    right.set_title("per-layer curves (colour = kind)")
    right.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_output(path, overwrite) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
