"""Stage 2 with the mobile UNet (--unet mobile-tiny) and the ReLU-attention fine-tuning path (--init, --attention)."""

from __future__ import annotations

import pytest
import torch

from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.loading.original import save_original
from sd.paths import DEFAULT_CHECKPOINT, WEIGHTS_DIR
from sd.train import text_to_image
from sd.train.assemble import assemble
from unet.config import MOBILE_TINY_UNET

VAE = WEIGHTS_DIR / "tiny-shapes-vae.safetensors"
SMALL = ["--vae", str(VAE), "--train-size", "64", "--batch", "8", "--device", "cpu"]


def test_mobile_tiny_trains_assembles_and_loads_strictly(tmp_path):
    out = tmp_path / "t2i"
    args = [*SMALL, "--out", str(out), "--unet", "mobile-tiny", "--steps", "2", "--save-every", "2"]
    result = text_to_image.train(text_to_image.parse_args(args))
    assert result["model"].unet.config == MOBILE_TINY_UNET
    assert any("to_kv" in k for k in result["model"].state_dict())
    # The state remembers its UNet: resuming it as the standard tiny model is refused, not silently mixed.
    with pytest.raises(UserError, match="another UNet"):
        text_to_image.train(text_to_image.parse_args([*SMALL, "--out", str(out), "--steps", "3"]))
    # The assembled file carries the config in its metadata, so it loads strictly as a mobile UNet.
    path = save_original(assemble(VAE, out / "state.pt", name="mobile-test"), tmp_path / "mobile-test.safetensors")
    loaded = load_checkpoint(path)
    assert loaded.unet.config == MOBILE_TINY_UNET
    ema = result["ema"].unet.state_dict()
    assert all(torch.allclose(v.float(), ema[k], atol=1e-3) for k, v in loaded.unet.state_dict().items())


def test_relu_fine_tuning_starts_from_the_shipped_weights(tmp_path):
    args = [*SMALL, "--out", str(tmp_path), "--init", str(DEFAULT_CHECKPOINT), "--attention", "relu",
            "--steps", "1", "--lr", "1e-12"]  # fmt: skip
    model = text_to_image.train(text_to_image.parse_args(args))["model"]
    shipped = load_checkpoint(DEFAULT_CHECKPOINT)
    assert model.unet.config.attention == "relu" and shipped.unet.config.attention == "softmax"
    for name, part in (("unet", model.unet), ("text_encoder", model.text_encoder)):
        reference = getattr(shipped, name).state_dict()
        assert all(torch.allclose(v, reference[k], atol=1e-6) for k, v in part.state_dict().items()), name
