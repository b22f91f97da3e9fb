"""The JSON written next to every animation: all settings, every frame's seeds and blend weights, and the
fingerprint of the weights that made it. `python -m sd gif --from-json FILE` reads it back and makes the
same file, byte for byte (it refuses if the checkpoint's weights are not the same ones).
"""

from __future__ import annotations

import json
from pathlib import Path

from sd.atomic_output import atomic_output
from sd.errors import UserError
from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings
from sd.json_file import read_json

VERSION = 1


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def write_sidecar(path: Path, record: dict, overwrite: bool = False) -> None:
    with atomic_output(path, overwrite) as tmp:
        tmp.write_text(json.dumps({"version": VERSION} | record, indent=1) + "\n")


def read_sidecar(path: str | Path) -> tuple[list[Keyframe], GifSettings, dict]:
    """Keyframes, settings, and the rest of the record (checkpoint, output) of a sidecar file."""
    path = Path(path)
    record = read_json(path, "no such sidecar file")
    try:
        if record.get("version") != VERSION:
            raise UserError(f"{path}: sidecar version {record.get('version')!r}, this tool reads {VERSION}")
        keyframes = [Keyframe(k["frame"], k["prompt"], k.get("seed")) for k in record["keyframes"]]
        settings = GifSettings.from_dict(record["settings"], source=str(path))  # old sidecars: as they ran
    except (KeyError, TypeError, AttributeError) as error:
        raise UserError(f"{path}: not a GIF sidecar (missing or malformed {error})") from None
    return keyframes, settings, record
