"""The sha256 of a file's bytes: what a sidecar or a student file records to say exactly which file it used."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
