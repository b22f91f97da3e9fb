"""One rule picks the checkpoint: a given path, else a shipped model by name, else a caller's fallback (a GIF
sidecar's model), else the default; whatever is missing is a one-line error that says what to pass instead."""

from __future__ import annotations

import pytest

from sd.checkpoint_choice import resolve_checkpoint
from sd.errors import UserError
from sd.paths import DEFAULT_CHECKPOINT, DEFAULT_MODEL, SHIPPED_MODELS


def test_a_path_then_a_model_then_the_fallback_then_the_default(tmp_path):
    given, recorded = tmp_path / "given.safetensors", tmp_path / "recorded.safetensors"
    given.write_bytes(b"x")
    recorded.write_bytes(b"x")
    assert resolve_checkpoint(str(given), fallback=recorded) == given
    assert resolve_checkpoint(model="mobile-tiny", fallback=recorded) == SHIPPED_MODELS["mobile-tiny"]
    assert resolve_checkpoint(None, None, fallback=str(recorded)) == recorded
    assert resolve_checkpoint() == DEFAULT_CHECKPOINT == SHIPPED_MODELS[DEFAULT_MODEL]


def test_a_path_and_a_model_together_are_refused():
    with pytest.raises(UserError, match="give one of them, not both"):
        resolve_checkpoint("x.safetensors", "tiny-shapes")


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(UserError, match=r"nope\.safetensors: no such checkpoint \(give an SD 1\.x/2\.x file"):
        resolve_checkpoint(tmp_path / "nope.safetensors")


def test_a_missing_shipped_model_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.setitem(SHIPPED_MODELS, "mobile-tiny", tmp_path / "mobile-tiny.safetensors")
    monkeypatch.setitem(SHIPPED_MODELS, DEFAULT_MODEL, tmp_path / "tiny-shapes.safetensors")
    with pytest.raises(UserError, match="mobile-tiny model is not in this checkout.*PATH or another --model"):
        resolve_checkpoint(model="mobile-tiny")
    with pytest.raises(UserError) as caught:  # the default: commands without --model run this too
        resolve_checkpoint()
    message = str(caught.value)
    assert "tiny-shapes.safetensors: the shipped tiny-shapes model" in message and message.endswith("--checkpoint PATH")
    with pytest.raises(UserError, match="no such shipped model; choose from tiny-shapes, mobile-tiny"):
        resolve_checkpoint(model="huge")
