"""The mobile ablation driver trains exactly the configs the bench times, and resumes instead of redoing work."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from sd.bench import mobile_adherence
from sd.bench.mobile import tiny_scale_rows
from sd.cli.main import main
from sd.loading.checkpoint import load_checkpoint
from sd.loading.config_json import config_overrides
from unet.config import TINY_UNET, UNetConfig


@pytest.mark.parametrize("row", tiny_scale_rows(), ids=lambda r: mobile_adherence.slug(r.name))
def test_overrides_rebuild_each_row_from_the_tiny_preset(row):
    args = mobile_adherence.overrides(row.config)
    assert args[::2] == ["--set"] * (len(args) // 2)
    pairs = args[1::2]  # drop the "--set"s
    assert dataclasses.replace(TINY_UNET, **config_overrides(UNetConfig, pairs, "--set")) == row.config
    assert (args == []) == (row.config == TINY_UNET)  # only the standard row needs no override


def test_trains_evaluates_tabulates_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the latent cache's default folder is relative
    args = ["--steps", "2", "--stop-after", "0", "--train-size", "128", "--samples", "2", "--rows", "0,1",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(["bench", "mobile-adherence", *args]) == 0
    table = (tmp_path / "adherence.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in table[2:]] == ["| standard tiny UNet", "| shared K/V in self-attention"]
    assert load_checkpoint(tmp_path / "1-shared-k-v-in-self-attention" / "model.safetensors").unet.config.shared_kv

    def no_work(*_args, **_kwargs):
        raise AssertionError("a finished row was trained or evaluated again")

    monkeypatch.setattr("sd.train.text_to_image.train", no_work)
    monkeypatch.setattr("sd.eval.adherence.evaluate_adherence", no_work)
    assert main(["bench", "mobile-adherence", *args]) == 0
    assert (tmp_path / "adherence.md").read_text().splitlines() == table


def test_the_shipped_recipe_evaluates_the_shipped_models(tmp_path):
    from sd.paths import SHIPPED_MODELS

    rows = tiny_scale_rows()
    recipe = argparse.Namespace(**mobile_adherence.SHIPPED_RECIPE)
    assert mobile_adherence.train_row(rows[0], tmp_path, recipe) == SHIPPED_MODELS["tiny-shapes"]
    preset = next(r for r in rows if r.name.startswith("mobile-tiny (preset"))
    assert mobile_adherence.train_row(preset, tmp_path, recipe) == SHIPPED_MODELS["mobile-tiny"]
    assert load_checkpoint(SHIPPED_MODELS["mobile-tiny"]).unet.config == preset.config
    assert not list(tmp_path.iterdir())  # nothing trained
    (tmp_path / "model.safetensors").write_bytes(b"")  # with another recipe the row's own (finished) model counts
    other = argparse.Namespace(**{**mobile_adherence.SHIPPED_RECIPE, "stop_after": 1000})
    assert mobile_adherence.train_row(rows[0], tmp_path, other) == tmp_path / "model.safetensors"


def test_table_reports_each_finished_rows_cost_and_scores():
    rows = tiny_scale_rows()
    for i, row in enumerate(rows):
        row.params, row.flops = 100 + 10 * i, 1000 - 100 * i
    accuracy = {a: 0.5 for a in mobile_adherence.ATTRIBUTES} | {"shape": 0.925}
    done = {
        "held_in": {"accuracy": accuracy, "all_correct": 0.25},
        "held_out": {"accuracy": accuracy, "all_correct": 0.125},
    }
    text = mobile_adherence.table(rows, {rows[0].name: done, rows[2].name: done}, steps=2750).splitlines()
    assert len(text) == 4 and "2750 training steps" in text[0]
    assert text[0].count("|") == text[1].count("|") == text[3].count("|")
    assert text[3] == f"| {rows[2].name} | 1.20x | 0.80x | 50.0 | 92.5 | 50.0 | 50.0 | 50.0 | 25.0 | 12.5 |"


def test_the_relu_preset_row_is_converted_from_the_trained_preset_row(tmp_path, monkeypatch):
    from sd.train import text_to_image

    monkeypatch.chdir(tmp_path)
    calls, real_train = [], text_to_image.train

    def recording_train(args):
        calls.append(args)
        return real_train(args)

    monkeypatch.setattr(text_to_image, "train", recording_train)
    args = ["--steps", "2", "--stop-after", "0", "--convert-steps", "3", "--train-size", "128", "--samples", "2",
            "--rows", "8", "--out", str(tmp_path)]  # fmt: skip
    assert main(["bench", "mobile-adherence", *args]) == 0
    rows = tiny_scale_rows()
    preset = tmp_path / "7-mobile-tiny-preset-all-but-relu" / "model.safetensors"
    assert [c.init for c in calls] == [None, preset]  # the softmax preset is trained first, then converted
    assert (calls[1].attention, calls[1].steps, calls[1].lr) == ("relu", 3, mobile_adherence.CONVERSION_LR)
    converted = load_checkpoint(tmp_path / "8-mobile-tiny-relu-attention" / "model.safetensors").unet.config
    assert converted == rows[8].config and converted.attention == "relu"
    table = (tmp_path / "adherence.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in table[2:]] == ["| mobile-tiny + ReLU attention (converted)"]
