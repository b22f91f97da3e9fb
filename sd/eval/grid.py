"""A PNG grid of generated samples, each titled with its prompt, to look at what the scores summarise.

Each cell's frame says which prompt set it came from (held-in or held-out pairs); a red title means
the classifier read something other than the prompt, and the extra line says what it saw.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field

from matplotlib.figure import Figure
from PIL import Image

from sd.atomic_output import atomic_output

GROUP_COLOURS = {"held-in": "tab:blue", "held-out": "tab:orange"}
HEADING = "frame: blue = held-in colour-shape pair, orange = held-out pair; red title = the classifier saw otherwise"


@dataclass
class GridCell:
    image: Image.Image
    prompt: str
    group: str = "held-in"  # a key of GROUP_COLOURS, or any label (drawn gray)
    wrong: dict[str, str] = field(default_factory=dict)  # attribute -> what the classifier saw instead


def write_grid(
    cells: list[GridCell], path: str | os.PathLike, columns: int = 8, overwrite: bool = False, heading: str = HEADING
) -> None:
    """Draw `cells` row by row, `columns` to a row, into a PNG at `path` (written atomically)."""
    if not cells:
        raise ValueError("no samples to draw")
    columns = min(columns, len(cells))
    rows = -(-len(cells) // columns)
    # A bare Figure, not pyplot: no backend is chosen at import, so notebooks keep their inline plots.
    fig = Figure(figsize=(1.55 * columns, 1.95 * rows + 0.5))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, cell in zip(axes.flat, cells, strict=False):
        ax.axis("on")
        ax.imshow(cell.image.convert("RGB"), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        colour = GROUP_COLOURS.get(cell.group, "gray")
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(2.5)
        title = textwrap.fill(cell.prompt, 26)
        if cell.wrong:
            title += "\nsaw: " + ", ".join(cell.wrong.values())
        ax.set_title(title, fontsize=5.5, color="crimson" if cell.wrong else "black", pad=3)
    fig.suptitle(heading, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
