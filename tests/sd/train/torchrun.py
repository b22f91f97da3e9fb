"""Running a trainer as a command, alone or under torchrun, for the tests that compare the two."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def run(command: list[str], timeout: int = 600) -> str:
    """stdout + stderr of `command` run from the repository root; fails the test on a non-zero exit."""
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr
