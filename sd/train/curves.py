"""Loss history kept in the training state and drawn as a PNG (log-scale loss, or a score, against step).

Drawn on a bare matplotlib Figure, not through pyplot, so importing this (a notebook importing a training
module) leaves the session's plotting backend alone and no GUI is ever needed.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def plot_curves(
    history: dict[str, list[tuple[int, float]]], path: Path, title: str, ylabel: str = "loss", log: bool = True
) -> None:
    """One line per history entry (validation entries, named val*, with markers); `log`: log-scale y."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for name, points in history.items():
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, label=name, marker="o" if name.startswith("val") else None, markersize=3)
    ax.set_yscale("log" if log else "linear")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
