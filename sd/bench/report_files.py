"""A bench's report on disk: its table as markdown and its whole record as JSON, each written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

from sd.atomic_output import atomic_output


def write_report(record: dict, table: str, out: Path, name: str) -> tuple[Path, Path]:
    """out/NAME.md (`table`) and out/NAME.json (`record`)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = out / f"{name}.md", out / f"{name}.json"
    with atomic_output(paths[0], overwrite=True) as tmp:
        tmp.write_text(table + "\n")
    with atomic_output(paths[1], overwrite=True) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return paths
