"""bf16 weights, fp32 arithmetic: how a bf16 model runs on a CPU without bf16 matrix instructions.

bf16 halves a model's memory (and a bf16 file stays memory-mapped), but a CPU without AVX512-BF16 or AMX
has no bf16 multiply: oneDNN emulates it, and a bf16 UNet call runs about 3.5x *slower* than fp32 there.
"fp32 compute" keeps every parameter in bf16 and upcasts each layer's weights only while that layer runs:

    y = f(x; float32(W_bf16))        (x, y and every activation in float32)

so the arithmetic is exactly fp32 on bf16-rounded weights: fp32's kernels plus one bf16 -> fp32 copy of
each weight per call (SD 1.5's UNet on 2 busy cores: 1.13x fp32's time, 0.4-0.5x native bf16's), and more
accurate than native bf16, which also rounds every activation to bf16.

Mechanism: a forward pre-hook on each module holding bf16 tensors of its own (Linear, Conv2d, GroupNorm,
LayerNorm, Embedding, ...) swaps them for fp32 copies in `module._parameters` / `_buffers` and casts bf16
tensor arguments to fp32; a forward hook (`always_call`, so an exception cannot leave it half done) puts
the original tensors back. Chosen over the alternatives because nothing about the model changes between
calls: `torch.nn.utils.parametrize` would rename `weight` to `parametrizations.weight.original` (breaking
strict loading, export and fingerprints), a `TorchFunctionMode` would catch every op of the process, and
keeping fp32 copies would give the memory back. Between calls the modules hold their bf16 tensors, so
LoRA's merge/unmerge (sd/lora/stack.py) and state dicts see exactly what was loaded.

`native` keeps torch's bf16 kernels; `auto` picks native on GPUs and on CPUs with bf16 matrix
instructions, fp32 compute elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import torch
from torch import nn

from sd.bf16_modes import MODES
from sd.errors import UserError

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512-BF16 / AMX; "bf16" is arm64's BFMMLA


@cache
def cpu_has_bf16_matmul() -> bool:
    """Whether this CPU multiplies bf16 in hardware: torch's own check, else /proc/cpuinfo's flags."""
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        if getattr(torch.cpu, check, lambda: False)():
            return True
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return False
    flags = set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_mode(mode: str, device: str | torch.device = "cpu") -> str:
    """What `mode` means on `device`: "native" or "fp32" (auto: native where bf16 matmuls are hardware)."""
    if mode not in MODES:
        raise UserError(f"unknown bf16 compute mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    native = torch.device(device).type != "cpu" or cpu_has_bf16_matmul()
    return "native" if native else "fp32"


def _bf16_tensors(module: nn.Module) -> list[tuple[dict, str]]:
    """(store, name) of the module's own bf16 parameters and buffers (not its children's)."""
    return [
        (store, name)
        for store in (module._parameters, module._buffers)
        for name, t in store.items()
        if t is not None and t.dtype == torch.bfloat16
    ]


class _Workspace:
    """One growing fp32 buffer per device that every layer's upcast weights borrow in turn (inference only).

    A fresh `.float()` of each weight maps new pages from the OS at every call (SD's big weights are far over
    malloc's mmap threshold), and faulting them in costs about as much as the copy itself; a reused, warm
    buffer saves that (all 860M weights of SD 1.5's UNet, 2 busy cores: 0.18-0.70 s instead of 0.88-2.1 s). Borrowing is
    a stack (a module nested in another bumps the offset), and autograd gets fresh copies instead, because
    backward needs the weights after the buffer has moved on.
    """

    ALIGN = 16  # elements: each borrowed part starts 64-byte aligned, as a fresh allocation would

    def __init__(self) -> None:
        self.buffers: dict[torch.device, torch.Tensor] = {}
        self.starts: list[int] = []  # the borrowed parts' offsets, innermost last
        self.used = 0

    def upcast(self, t: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return t.float()
        start = -(-self.used // self.ALIGN) * self.ALIGN
        end = start + t.numel()
        buffer = self.buffers.get(t.device)
        if buffer is None or buffer.numel() < end:
            if self.used:  # a borrowed part is still in use: do not move it
                return t.float()
            buffer = self.buffers[t.device] = torch.empty(end, device=t.device)
        self.starts.append(self.used)
        self.used = end
        return buffer[start:end].view(t.shape).copy_(t)

    def give_back(self, t: torch.Tensor) -> None:
        buffer = self.buffers.get(t.device)
        if buffer is not None and t.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr():
            self.used = self.starts.pop()


_WORKSPACE = _Workspace()


def _upcast(value):
    return value.float() if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16 else value


class _Upcast:
    """The pair of hooks on one module; `saved` is a stack, so a re-entered module restores correctly."""

    def __init__(self, module: nn.Module) -> None:
        self.saved: list[list[tuple[dict, str, torch.Tensor]]] = []
        self.handles = [
            module.register_forward_pre_hook(self.before, with_kwargs=True),
            module.register_forward_hook(self.after, always_call=True),
        ]

    def before(self, module: nn.Module, args: tuple, kwargs: dict):
        swapped = []
        for store, name in _bf16_tensors(module):
            original = store[name]
            swapped.append((store, name, original))
            store[name] = _WORKSPACE.upcast(original)  # with grad: a fresh copy, through which training trains
        self.saved.append(swapped)
        return tuple(_upcast(a) for a in args), {k: _upcast(v) for k, v in kwargs.items()}

    def after(self, module: nn.Module, args: tuple, output):
        for store, name, original in reversed(self.saved.pop()):
            _WORKSPACE.give_back(store[name])
            store[name] = original
        return None

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def set_bf16_compute(modules: nn.Module | Iterable[nn.Module], mode: str, device: str | torch.device = "cpu"):
    """Make the bf16 parts of `modules` compute natively or in fp32 (see the module docstring).

    Returns what ran: "native" or "fp32", or None when no module holds bf16 tensors (the mode is moot).
    Calling it again switches modes; the state dicts are the same either way.
    """
    resolved = resolve_mode(mode, device)
    modules = [modules] if isinstance(modules, nn.Module) else list(modules)
    found = False
    for root in modules:
        for module in root.modules():
            hooks = module.__dict__.pop("_bf16_upcast", None)
            if hooks is not None:
                hooks.remove()
            if _bf16_tensors(module):
                found = True
                if resolved == "fp32":
                    module.__dict__["_bf16_upcast"] = _Upcast(module)
    return resolved if found else None


def bf16_compute_of(module: nn.Module) -> str | None:
    """How `module`'s bf16 parts compute: "fp32" (upcast per layer) or "native"; None if it has none."""
    parts = [m for m in module.modules() if _bf16_tensors(m)]
    if not parts:
        return None
    return "fp32" if any("_bf16_upcast" in m.__dict__ for m in parts) else "native"


def compute_dtype(module: nn.Module) -> torch.dtype:
    """The dtype `module`'s activations are in: its parameters' dtype, or fp32 under fp32 compute."""
    return torch.float32 if bf16_compute_of(module) == "fp32" else next(module.parameters()).dtype
