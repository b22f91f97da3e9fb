"""Strip outputs from notebooks before committing: `python notebooks/strip_outputs.py notebooks/*.ipynb`.

Committed notebooks hold only their source, so diffs show what changed and the repository stays small; CI
executes them anyway (tests/notebooks/). Code cells lose their outputs, execution counts and cell metadata
(timings, scroll state); the notebook keeps only its kernelspec and language name. `--check` changes
nothing and exits 1 if any file would change (what tests/notebooks/test_notebook_files.py asserts).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from sd.atomic_output import atomic_output

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def strip(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as it is committed: sources only."""
    for cell in notebook.cells:
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    return notebook


def stripped_text(path: Path) -> str:
    """What the file at `path` holds once stripped, in nbformat's own layout."""
    return nbformat.writes(strip(nbformat.read(path, as_version=4))) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)
    changed = []
    for path in args.notebooks:
        text = stripped_text(path)
        if text != path.read_text(encoding="utf-8"):
            changed.append(path)
            if not args.check:
                with atomic_output(path, overwrite=True) as tmp:
                    tmp.write_text(text, encoding="utf-8")
    for path in changed:
        print(f"{'would strip' if args.check else 'stripped'} {path}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
