"""Our config dataclasses <-> JSON, for the configs an export stores next to its weights."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from sd.errors import UserError

T = TypeVar("T")


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(cls: type[T], d: dict[str, Any], where: str) -> T:
    """Rebuild a config dataclass, turning JSON lists back into tuples; unknown fields are an error."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown {cls.__name__} fields {unknown}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def config_overrides(cls: type, pairs: list[str], where: str) -> dict[str, Any]:
    """`FIELD=VALUE` strings as replace() arguments; VALUE is JSON (lists become tuples), else a plain string."""
    fields = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in fields:
            raise UserError(f"{where} {pair!r}: expected FIELD=VALUE with FIELD one of {sorted(fields)}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[name] = tuple(value) if isinstance(value, list) else value
    return out
