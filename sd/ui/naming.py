"""Output names made from the time, the seed and a counter: never from anything the user typed."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

_counter = itertools.count(1)
_lock = threading.Lock()


def output_path(folder: Path, seed: int, suffix: str) -> Path:
    """folder/anim-YYYYmmdd-HHMMSS-seedS-NNN.suffix, a name that does not exist yet."""
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"unexpected suffix {suffix!r}")
    with _lock:
        while True:
            name = f"anim-{time.strftime('%Y%m%d-%H%M%S')}-seed{int(seed)}-{next(_counter):03d}{suffix}"
            path = folder / name
            if not path.exists() and not path.with_name(path.name + ".json").exists():
                return path
