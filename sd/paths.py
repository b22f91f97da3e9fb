"""Where the project's shipped files live (the repository's data/ and weights/ folders)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
WEIGHTS_DIR = REPO_ROOT / "weights"
CLIP_BPE_PATH = DATA_DIR / "bpe_simple_vocab_16e6.txt.gz"
