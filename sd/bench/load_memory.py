"""Peak resident memory while loading a full-size checkpoint, measured in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import resource, sys, torch
from sd.loading.checkpoint import load_checkpoint
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
checkpoint = load_checkpoint(sys.argv[1], "fp32")
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
modules = (checkpoint.unet, checkpoint.vae, checkpoint.text_encoder)
total = sum(float(p.float().sum()) for m in modules for p in m.parameters())
touched = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base, loaded, touched)
"""


def load_peak_memory(path: Path) -> dict[str, float]:
    """GiB of peak RSS: before loading (Python + torch), after load_checkpoint, after reading every weight."""
    result = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
    base, loaded, touched = (int(v) * 1024 / 2**30 for v in result.stdout.split())  # ru_maxrss is in KiB
    size = path.stat().st_size / 2**30
    return {"file": size, "base": base, "loaded": loaded, "touched": touched}
