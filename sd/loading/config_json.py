"""Our config dataclasses <-> JSON, for the configs an export stores next to its weights."""

from __future__ import annotations

import dataclasses
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
