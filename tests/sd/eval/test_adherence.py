"""Adherence scoring, the grid and the `eval` command, with fake pipelines that draw the true scene.

A fake that renders exactly what the prompt says must score 1.0 on every attribute; one that draws
the wrong colour must score ~0 on colour and stay perfect on the rest: the scoring compares the
right things, and the judge reads the image rather than the prompt.
"""

import re
import subprocess
import sys

import pytest
from PIL import Image

from sd.cli.main import main
from sd.data.shapes import Scene, render
from sd.data.vocabulary import COLOURS, HELD_OUT
from sd.errors import UserError
from sd.eval.adherence import REPORTED, evaluate_adherence, markdown_table
from sd.eval.classifier import load_classifier
from sd.eval.grid import GridCell, write_grid
from sd.paths import REPO_ROOT

CANONICAL = re.compile(r"a (\w+) (\w+) (\w+) in the (.+) on a (\w+) background")


def scene_of(prompt: str) -> Scene:
    """Read a canonical caption back into the scene it describes."""
    size, colour, shape, position, background = CANONICAL.fullmatch(prompt).groups()
    return Scene(shape, colour, background, size, position)


class FakePipe:
    """txt2img that draws the prompted scene (optionally in the wrong colour) and records its calls."""

    def __init__(self, wrong_colour: bool = False) -> None:
        self.wrong_colour = wrong_colour
        self.calls: list[dict] = []

    def txt2img(self, prompt: str, negative_prompt: str = "", **settings) -> list[Image.Image]:
        self.calls.append({"prompt": prompt, **settings})
        scene = scene_of(prompt)
        if self.wrong_colour:
            names = list(COLOURS)
            cycle = names[names.index(scene.colour) + 1 :] + names  # the next colour that is not the background
            wrong = next(c for c in cycle if c not in (scene.colour, scene.background))
            scene = Scene(scene.shape, wrong, scene.background, scene.size, scene.position)
        image = Image.fromarray(render(scene)[0])
        return [image.copy() for _ in range(settings["batch"])]


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


@pytest.mark.parametrize("held_out", [False, True])
def test_true_renders_score_one_on_every_attribute(classifier, held_out):
    pipe = FakePipe()
    result = evaluate_adherence(pipe, 40, seed=5, held_out=held_out, classifier=classifier, progress=False)
    assert result["accuracy"] == {a: 1.0 for a in REPORTED}
    assert result["all_correct"] == 1.0
    assert len(result["samples"]) == len(result["targets"]) == 40
    pairs = {(t["colour"], t["shape"]) for t in result["targets"]}
    assert all((pair in HELD_OUT) == held_out for pair in pairs)
    assert len(pairs) > 1 if not held_out else pairs <= HELD_OUT
    call = pipe.calls[0]
    assert (call["steps"], call["sampler"], call["guidance"], call["batch"]) == (25, "dpmpp_2m", 5.0, 1)


def test_wrong_colour_scores_zero_on_colour_only(classifier):
    result = evaluate_adherence(FakePipe(wrong_colour=True), 40, seed=6, held_out=False, classifier=classifier,
                                progress=False)  # fmt: skip
    assert result["accuracy"]["colour"] <= 0.025
    assert all(result["accuracy"][a] == 1.0 for a in REPORTED if a != "colour")
    assert result["all_correct"] <= 0.025


def test_batches_give_each_image_its_own_seed(classifier):
    pipe = FakePipe()
    result = evaluate_adherence(pipe, 10, seed=100, held_out=False, batch=4, classifier=classifier, progress=False)
    assert [c["batch"] for c in pipe.calls] == [4, 4, 2]
    assert [c["seed"] for c in pipe.calls] == [100, 104, 108]
    assert result["seeds"] == list(range(100, 110))
    assert [p for p, _, _ in result["samples"]] == [c["prompt"] for c in pipe.calls for _ in range(c["batch"])]


def test_markdown_table_marks_targets():
    held_in = {"n_samples": 10, "accuracy": dict.fromkeys(REPORTED, 1.0), "all_correct": 1.0}
    held_in["accuracy"]["colour"] = 0.9
    held_out = {"n_samples": 5, "accuracy": dict.fromkeys(REPORTED, 0.5), "all_correct": 0.2}
    rows = {line.split("|")[1].strip(): line for line in markdown_table(held_in, held_out).splitlines()}
    assert rows["colour"].rstrip("| ").endswith("not met") and ">= 95%" in rows["colour"]
    assert rows["shape"].rstrip("| ").endswith("met") and "not met" not in rows["shape"]
    assert "50.0%" in rows["size"] and "met" not in rows["size"]


def test_grid_writes_a_png(tmp_path):
    cells = [
        GridCell(Image.fromarray(render(Scene("star", "red", "blue", "large", "center"))[0]),
                 "a large red star in the center on a blue background", group, wrong)
        for group, wrong in (("held-in", {}), ("held-out", {"colour": "orange"}), ("held-out", {}))
    ]  # fmt: skip
    path = tmp_path / "grid.png"
    write_grid(cells, path, columns=2)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 200 and image.height > 200
    with pytest.raises(UserError, match="already exists"):
        write_grid(cells, path)


def test_cli_missing_checkpoint_is_one_line_with_exit_code_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sd", "eval", "--checkpoint", "/nonexistent.safetensors", "--out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "/nonexistent.safetensors" in result.stderr, result.stderr
    assert not list(tmp_path.iterdir())


def test_cli_without_trained_default_model_says_so(tmp_path, monkeypatch, capsys):
    from sd.paths import DEFAULT_MODEL, SHIPPED_MODELS

    monkeypatch.setitem(SHIPPED_MODELS, DEFAULT_MODEL, tmp_path / "tiny-shapes.safetensors")
    assert main(["eval", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not in this checkout" in err and "--checkpoint" in err


def test_cli_end_to_end_on_a_tiny_random_model(tmp_path, monkeypatch, capsys):
    """The real pipeline through `python -m sd eval` (random weights: the figures mean nothing, the files do)."""
    import json

    import sd.loading.checkpoint
    from tests.tiny_checkpoint import tiny_checkpoint

    monkeypatch.setattr(sd.loading.checkpoint, "load_checkpoint", lambda path: tiny_checkpoint())
    stand_in = tmp_path / "tiny.safetensors"  # the file must exist; what loads is the tiny model above
    stand_in.write_bytes(b"")
    out = tmp_path / "eval"
    args = ["eval", "--checkpoint", str(stand_in), "--samples", "3", "--held-out-samples", "2", "--steps", "2",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| colour |" in printed and "held-in (n=3)" in printed and "held-out (n=2)" in printed
    report = json.loads((out / "adherence.json").read_text())
    assert report["settings"]["steps"] == 2 and report["settings"]["sampler"] == "dpmpp_2m"
    assert len(report["held_in"]["samples"]) == 3 and len(report["held_out"]["samples"]) == 2
    assert set(report["held_in"]["targets_met"]) == {"colour", "shape", "position", "background"}
    with Image.open(out / "grid.png") as image:
        assert image.format == "PNG"
    assert main(args) == 2  # outputs exist: no silent overwrite
