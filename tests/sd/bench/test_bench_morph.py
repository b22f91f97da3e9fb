"""`python -m sd bench morph --quick`: the table, JSON and contact sheet of a small case, on the shipped model."""

import json

from PIL import Image

from sd.bench import morph
from sd.bench.morph import BEFORE, CROSSFADE, DEFAULT, IDEAL, IDEAL_DECODED, METHODS, QUICK, SHEET_ROWS, table
from sd.cli.main import main
from sd.gif.settings import DEFAULT_BRANCH


def test_quick_bench_tables_every_method_and_the_references(tmp_path, capsys):
    assert main(["bench", "morph", "--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    record = json.loads((tmp_path / "morph.json").read_text())
    summary = record["summary"]
    kinds = [pair.kind for pair in QUICK["pairs"]]
    assert list(summary) == ["all", *kinds]
    assert list(summary["all"]) == [DEFAULT, CROSSFADE, IDEAL, IDEAL_DECODED, *list(METHODS)[1:]]
    steps, frames = QUICK["steps"], QUICK["frames"]
    default, before = summary["all"][DEFAULT], summary["all"][BEFORE]
    assert default["n"] == before["n"] == len(QUICK["pairs"]) * len(QUICK["seeds"])
    # keyframes in full, each in-between from the branch step: the renderer's count, per transition
    planned = 2 * steps + (frames - 1) * (steps - round(steps * DEFAULT_BRANCH))
    assert before["unet_steps"] == planned
    # even spacing: the probes (12) and the chosen in-betweens, each from the branch step, at most
    assert planned < default["unet_steps"] <= 2 * steps + (12 + frames - 1) * (steps - round(steps * DEFAULT_BRANCH))
    assert summary["all"]["no sharing"]["unet_steps"] == (frames + 1) * steps
    fade = summary["all"][CROSSFADE]
    assert fade["unet_steps"] == 0 and fade["detour"]["worst"] < 1.1  # a blend goes straight, near enough
    assert fade["crossfade"]["median"] >= 2 / 3 and default["crossfade"]["worst"] == 0.0  # the guard tells them apart
    colour, position = summary["colour"][IDEAL], summary["position"][IDEAL]
    assert colour["detour"]["worst"] < 1.01 and colour["wander"]["worst"] == 0.0  # a straight line in CIELAB
    assert colour["crossfade"]["median"] == 1.0  # which, for a change of colour alone, is a pixel blend
    assert position["crossfade"]["worst"] == 0.0 and position["detour"]["median"] > 1.5  # a move sweeps pixels twice
    assert summary["all"][IDEAL_DECODED]["wander"]["worst"] == 0.0
    for row in summary["all"].values():
        assert row["jump_ratio"]["median"] >= 1.0 and 0.0 <= row["gini"]["median"] < 1.0
        assert row["detour"]["median"] >= 1.0 and 0.0 <= row["wander"]["median"] <= 1.0

    for kind in ["all", *kinds]:
        assert table(summary, kind) in printed
    assert (tmp_path / "morph.md").read_text().count("| method |") == 1 + len(kinds)
    frame = 64  # the shipped model's frames, pasted at their own size: one row per method, one block per kind
    sheet, short = Image.open(tmp_path / "morph.png"), Image.open(tmp_path / "morph-short.png")
    assert sheet.height == len(kinds) * (22 + frame * (len(METHODS) + 3))
    assert short.height == len(kinds) * (22 + frame * len(SHEET_ROWS))
    references = Image.open(tmp_path / "morph-references.png")
    assert references.height == len(kinds) * (22 + frame * len(morph.REFERENCE_ROWS))
    assert sheet.width >= short.width > (frames + 1) * frame  # the frames and a column of labels
    transitions = record["transitions"]
    assert len(transitions) == len(QUICK["pairs"]) * len(QUICK["seeds"]) * (len(METHODS) + 3)
    assert all(len(t["blend_gaps"]) == frames - 1 and len(t["off_the_way"]) == frames - 1 for t in transitions)
