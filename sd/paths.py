"""Where the project's shipped files live (the repository's data/ and weights/ folders)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
WEIGHTS_DIR = REPO_ROOT / "weights"
CLIP_BPE_PATH = DATA_DIR / "bpe_simple_vocab_16e6.txt.gz"
# The attribute classifier that judges prompt adherence (`python -m sd eval`).
CLASSIFIER_PATH = WEIGHTS_DIR / "shapes-classifier.safetensors"
# The GIF driver's frame cache (a --cache-dir default, relative to where the command runs).
FRAME_CACHE = Path("outputs/cache/frames")
# Models shipped in weights/, selectable by name with --model (MobileDiffusion-style UNet: see unet/config.py;
# the -distilled ones are UNet-only few-step students of the two, `python -m sd.train.distill`).
SHIPPED_MODELS = {
    name: WEIGHTS_DIR / f"{name}.safetensors"
    for name in ("tiny-shapes", "mobile-tiny", "tiny-shapes-distilled", "mobile-tiny-distilled")
}
# The small model trained here on generated shapes: the default when neither --checkpoint nor --model is given
# (sd/checkpoint_choice.py holds that rule).
DEFAULT_MODEL = "tiny-shapes"
DEFAULT_CHECKPOINT = SHIPPED_MODELS[DEFAULT_MODEL]
