"""Write outputs under a temporary name and rename them into place only when complete.

An interrupted or failed write (Ctrl-C, full disk, a bug) then never leaves a half-written file that
looks finished.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sd.errors import UserError


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `path` (file or folder) to write; move it to `path` on success."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists; choose another name or allow overwriting")
    if not path.parent.exists():
        raise UserError(f"{path.parent}: no such folder for the output")
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        yield tmp
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
