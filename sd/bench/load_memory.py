"""Peak resident memory while loading a full-size checkpoint, measured in a fresh process.

Read from /proc/self/status (VmHWM, the peak RSS of this process image); `ru_maxrss` would not do, as
Linux carries it across exec from the forking parent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import sys
def peak():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1])  # KiB
import torch
from sd.loading.checkpoint import load_checkpoint
base = peak()
checkpoint = load_checkpoint(sys.argv[1], "fp32")
loaded = peak()
modules = (checkpoint.unet, checkpoint.vae, checkpoint.text_encoder)
total = sum(float(p.float().sum()) for m in modules for p in m.parameters())
print(base, loaded, peak())
"""


def load_peak_memory(path: Path) -> dict[str, float]:
    """GiB of peak RSS: before loading (Python + torch), after load_checkpoint, after reading every weight."""
    result = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
    base, loaded, touched = (int(v) * 1024 / 2**30 for v in result.stdout.split())
    return {"file": path.stat().st_size / 2**30, "base": base, "loaded": loaded, "touched": touched}
