"""Build a module without allocating weights, then load a state dict into it strictly.

The module is created on the `meta` device (shapes only) and `load_state_dict(assign=True)` adopts the
checkpoint's tensors as its parameters, so memory-mapped weights are not copied. Mismatches are
reported in one line naming the first few keys, instead of PyTorch's multi-page error.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sd.errors import UserError


def _first(names: list[str], n: int = 3) -> str:
    shown = ", ".join(names[:n])
    return f"{shown} (+{len(names) - n} more)" if len(names) > n else shown


def strict_load(
    build: Callable[[], nn.Module],
    state_dict: dict[str, torch.Tensor],
    where: str,
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """`build()` on the meta device, check keys and shapes against `state_dict`, then adopt its tensors."""
    with torch.device("meta"):
        module = build()
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing:
        raise UserError(f"{where}: missing {len(missing)} keys: {_first(missing)}")
    if unexpected:
        raise UserError(f"{where}: {len(unexpected)} unexpected keys: {_first(unexpected)}")
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if state_dict[k].shape != v.shape
    ]
    if wrong:
        raise UserError(f"{where}: {len(wrong)} shape mismatches (checkpoint != model): {_first(wrong, 2)}")
    # .to() is a no-op for tensors already in `dtype`, so memory-mapped weights stay mapped.
    module.load_state_dict({k: v.to(dtype) for k, v in state_dict.items()}, strict=True, assign=True)
    return module.eval().requires_grad_(False)
