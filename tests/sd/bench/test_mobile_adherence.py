"""The per-switch adherence driver: its --set arguments rebuild each row's config, shipped rows are not retrained,
and the table reports what the results say."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from sd.bench.mobile import tiny_scale_rows
from sd.bench.mobile_adherence import ATTRIBUTES, SHIPPED_RECIPE, overrides, table, train_row
from sd.loading.config_json import config_overrides
from sd.paths import SHIPPED_MODELS
from unet.config import TINY_UNET, UNetConfig


@pytest.mark.parametrize("row", tiny_scale_rows(), ids=lambda r: r.name)
def test_overrides_rebuild_every_row(row):
    args = overrides(row.config)
    assert args[::2] == ["--set"] * (len(args) // 2)
    rebuilt = dataclasses.replace(TINY_UNET, **config_overrides(UNetConfig, args[1::2], "--set"))
    assert rebuilt == row.config
    assert (args == []) == (row.config == TINY_UNET)


def test_shipped_rows_stand_in_only_with_the_shipped_recipe(tmp_path):
    rows = tiny_scale_rows()
    args = argparse.Namespace(**SHIPPED_RECIPE)
    assert train_row(rows[0], tmp_path, args) == SHIPPED_MODELS["tiny-shapes"]
    assert train_row(rows[7], tmp_path, args) == SHIPPED_MODELS["mobile-tiny"]
    (tmp_path / "model.safetensors").write_bytes(b"")  # a finished row is not trained again either
    other = argparse.Namespace(**{**SHIPPED_RECIPE, "stop_after": 1000})
    assert train_row(rows[0], tmp_path, other) == tmp_path / "model.safetensors"


def test_table_lists_finished_rows_with_their_figures():
    rows = tiny_scale_rows()
    for i, row in enumerate(rows):
        row.params, row.flops = 100 + 10 * i, 1000 - 100 * i
    accuracy = {a: 0.5 for a in ATTRIBUTES} | {"shape": 0.925}
    done = {
        "held_in": {"accuracy": accuracy, "all_correct": 0.25},
        "held_out": {"accuracy": accuracy, "all_correct": 0.125},
    }
    text = table(rows, {rows[0].name: done, rows[2].name: done}, steps=2750).splitlines()
    assert len(text) == 4 and "2750 training steps" in text[0]
    assert text[0].count("|") == text[1].count("|") == text[3].count("|")
    assert text[3] == f"| {rows[2].name} | 1.20x | 0.80x | 50.0 | 92.5 | 50.0 | 50.0 | 50.0 | 25.0 | 12.5 |"
