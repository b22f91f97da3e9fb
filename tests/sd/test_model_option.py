"""`--model NAME` picks a shipped model, neither option the default; with --checkpoint too, or a missing file, it
is a one-line error."""

from __future__ import annotations

import argparse

import pytest

from sd.cli.model_option import apply_model_option
from sd.errors import UserError
from sd.paths import DEFAULT_CHECKPOINT, SHIPPED_MODELS


def test_model_name_becomes_the_checkpoint_path():
    args = argparse.Namespace(model="mobile-tiny", checkpoint=None)
    apply_model_option(args)
    assert args.checkpoint == str(SHIPPED_MODELS["mobile-tiny"])


def test_neither_option_is_the_default_or_the_fallback(tmp_path):
    args = argparse.Namespace(model=None, checkpoint=None)
    apply_model_option(args)
    assert args.checkpoint == str(DEFAULT_CHECKPOINT)
    recorded = tmp_path / "recorded.safetensors"
    recorded.write_bytes(b"x")
    args = argparse.Namespace(model=None, checkpoint=None)
    apply_model_option(args, fallback=recorded)
    assert args.checkpoint == str(recorded)


def test_model_and_checkpoint_together_are_refused():
    with pytest.raises(UserError, match="not both"):
        apply_model_option(argparse.Namespace(model="tiny-shapes", checkpoint="x.safetensors"))


def test_missing_shipped_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(SHIPPED_MODELS, "mobile-tiny", tmp_path / "mobile-tiny.safetensors")
    with pytest.raises(UserError, match="mobile-tiny.safetensors"):
        apply_model_option(argparse.Namespace(model="mobile-tiny", checkpoint=None))
