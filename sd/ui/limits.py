"""Upload size limits: a too-large file is refused with a message that names the limit, before it is read."""

from __future__ import annotations

from pathlib import Path

from sd.errors import UserError

MB = 1024 * 1024
LIMITS = {"image": 20 * MB, "audio": 50 * MB, "video": 200 * MB}
MAX_UPLOAD = max(LIMITS.values())  # Gradio refuses anything larger before it reaches us


def check_upload(path: str | Path | None, kind: str) -> str | None:
    """The path, or None when nothing was uploaded; UserError when it is over the limit for its kind."""
    if path is None:
        return None
    size = Path(path).stat().st_size
    if size > LIMITS[kind]:
        raise UserError(f"the {kind} is {size / MB:.1f} MB, over the {LIMITS[kind] // MB} MB limit for {kind} uploads")
    return str(path)
