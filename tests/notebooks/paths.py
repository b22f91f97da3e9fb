"""The notebooks under test: every notebooks/*.ipynb, so a new notebook is picked up without touching the tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
