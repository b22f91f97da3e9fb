"""Reading a single weights file into a state dict, safely and without extra copies.

- `.safetensors`: memory-mapped; tensors are views into the file until something writes to them.
- `.ckpt` / `.pt` / `.bin`: `torch.load(weights_only=True)`, which refuses to run the arbitrary code a
  pickle can carry. A file that needs more than plain tensors is refused with the reason.
The format is sniffed from the first bytes, not the extension.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from sd.errors import UserError

ZIP_MAGIC = b"PK\x03\x04"


def sniff_format(path: Path) -> str:
    """'safetensors', 'zip' (torch.save), 'pickle' (legacy torch.save) or 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 0 < header_len < 100_000_000:
            return "safetensors"
    if head[:1] == b"\x80":  # pickle protocol marker
        return "pickle"
    return "unknown"


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The free-form `__metadata__` of a safetensors header (where our exports keep their configs)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{path}: safetensors header is corrupt ({error})") from None
    return header.get("__metadata__") or {}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one weights file; raises UserError for anything that is not a readable checkpoint."""
    return read_weights(path)[0]


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata): metadata is a safetensors header's `__metadata__`, or the string and integer
    entries stored beside `state_dict` in a torch.save file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; pass a .safetensors or .ckpt file or a diffusers folder")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a weights file")
    fmt = sniff_format(path)
    if fmt == "safetensors":
        try:
            return load_file(path), safetensors_metadata(path)
        except (SafetensorError, OSError, ValueError) as error:
            raise UserError(f"{path}: truncated or corrupt safetensors file ({error})") from None
    if fmt in ("zip", "pickle"):
        return _read_torch_file(path, fmt)
    raise UserError(
        f"{path}: not a checkpoint (neither safetensors nor a torch.save file); "
        "pass a .safetensors or .ckpt file or a diffusers folder"
    )


def _read_torch_file(path: Path, fmt: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if fmt == "zip":
        try:
            zipfile.ZipFile(path).testzip()  # catches truncation before torch's less helpful message
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise UserError(f"{path}: truncated or corrupt checkpoint ({error})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=fmt == "zip")
    except pickle.UnpicklingError as error:
        detail = str(error).splitlines()
        reason = next((line.strip() for line in detail if "GLOBAL" in line or "Unsupported" in line), "")
        raise UserError(
            f"{path}: refused, loading it would unpickle arbitrary Python objects ({reason or 'not plain tensors'}); "
            "only weights-only checkpoints are read: convert it to .safetensors with a tool you trust"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise UserError(f"{path}: truncated or corrupt checkpoint ({str(error).splitlines()[0]})") from None
    metadata: dict[str, str] = {}
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        # Strings, and numbers as strings: SD 2.x-base's `global_step` tells it from the v-model.
        metadata = {k: str(v) for k, v in obj.items() if isinstance(v, str | int)}
        obj = obj["state_dict"]  # Lightning-style {"state_dict": ..., "global_step": ...}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: not a checkpoint (no state dict of tensors inside)")
    return obj, metadata
