"""Stage 2 with the mobile UNet (--unet mobile-tiny) and the ReLU-attention fine-tuning path (--init, --attention)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.loading.original import save_original
from sd.paths import DEFAULT_CHECKPOINT, WEIGHTS_DIR
from sd.train import text_to_image
from sd.train.assemble import assemble
from unet.config import MOBILE_TINY_UNET, TINY_UNET

VAE = WEIGHTS_DIR / "tiny-shapes-vae.safetensors"
SMALL = ["--vae", str(VAE), "--train-size", "64", "--batch", "8", "--device", "cpu", "--no-latent-cache"]


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


def test_set_changes_one_field_of_the_preset(tmp_path):
    args = [*SMALL, "--out", str(tmp_path), "--steps", "1", "--set", "shared_kv=true", "--set", "separable_levels=[1]",
            "--set", "ff_activation=silu"]  # fmt: skip
    config = text_to_image.train(text_to_image.parse_args(args))["model"].unet.config
    assert config == dataclasses.replace(TINY_UNET, shared_kv=True, separable_levels=(1,), ff_activation="silu")
    with pytest.raises(UserError, match="FIELD=VALUE"):
        text_to_image.unet_config(text_to_image.parse_args([*SMALL, "--set", "shared_key=true"]))


def test_latents_are_encoded_once_and_reused(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    args = [*SMALL[:-1], "--latent-cache", str(cache), "--steps", "1"]
    first = text_to_image.train(text_to_image.parse_args([*args, "--out", str(tmp_path / "a")]))
    assert len(list(cache.glob("*.pt"))) == 1

    def no_encoder(*_):
        raise AssertionError("encoded again despite the cache")

    monkeypatch.setattr(text_to_image, "encode_latents", no_encoder)
    second = text_to_image.train(text_to_image.parse_args([*args, "--out", str(tmp_path / "b")]))
    assert first["history"]["val"] == second["history"]["val"]  # same latents, same run
    with pytest.raises(AssertionError, match="encoded again"):  # other images: a new key, not stale latents
        text_to_image.train(text_to_image.parse_args([*args, "--out", str(tmp_path / "c"), "--seed", "1"]))
