"""Reading a JSON file the user named (a GIF sidecar, a diffusers folder's configs, a tokenizer's files, a
sensitivity sweep): whatever is wrong with it becomes a one-line UserError that names the file."""

from __future__ import annotations

import json
from pathlib import Path

from sd.errors import UserError


def read_json(path: str | Path, missing: str) -> object:
    """The parsed content of `path`; `missing` ends the message when there is no such file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {missing}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read it ({error})") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from None
