"""Every notebook runs top to bottom, as a learner would run it, within its 3-minute budget.

Each notebook runs in a fresh python3 kernel (ipykernel) through nbclient, with notebooks/ as the working
directory (where Jupyter starts a kernel for a notebook opened there), this repository first on PYTHONPATH,
HF_HUB_OFFLINE=1 and OMP_NUM_THREADS=1 unless already set (the shipped model's tensors are too small to gain
from threads, and one thread is not slowed down by a busy machine the way several are). Set
SD_NOTEBOOKS_OUT=FOLDER to keep the executed copies, with their plots, in FOLDER.
"""

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebooks.paths import NOTEBOOK_DIR, NOTEBOOKS, REPO

BUDGET_S = 180  # the "<= 3 minutes on CPU" per notebook; each one aims at <= 45 s


def image_outputs(notebook) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in Jupyter
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=BUDGET_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    start = time.perf_counter()
    client.execute()  # a cell that raises fails the test with its traceback (CellExecutionError)
    elapsed = time.perf_counter() - start
    print(f"{path.name}: {elapsed:.1f} s")
    if os.environ.get("SD_NOTEBOOKS_OUT"):
        out = Path(os.environ["SD_NOTEBOOKS_OUT"])
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, out / path.name)
    assert image_outputs(notebook) >= 1, "a notebook shows its plots and images"
    assert elapsed <= BUDGET_S, f"{path.name} took {elapsed:.0f} s, over its {BUDGET_S} s budget"
