"""`python -m sd gif`: sidecar round trip byte for byte, plain prompt lists, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sd.cli.main import main
from sd.gif.sidecar import read_sidecar
from tests.sd.gif.conftest import KEYFRAMES

REPO = Path(__file__).resolve().parents[3]


def gif(*args: str) -> int:
    return main(["gif", *args, "--quiet"])


def test_from_json_reproduces_the_file_byte_for_byte(tiny_file, tmp_path, capsys):
    keyframes = tmp_path / "keys.txt"
    keyframes.write_text(KEYFRAMES)  # no trailing newline: the last prompt stays whole
    first = tmp_path / "first.gif"
    common = ["--checkpoint", str(tiny_file), "--cache-dir", str(tmp_path / "cache")]
    assert gif("--keyframes", str(keyframes), "--out", str(first), "--steps", "3", "--loop", "--seed", "5",
               "--pixelate", "16", *common) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "jump ratio" in printed and "wrote" in printed
    record = json.loads((tmp_path / "first.gif.json").read_text())
    assert record["keyframes"][-1]["prompt"] == "a green star"
    assert record["settings"]["seed"] == 5 and record["settings"]["loop"] is True
    assert [f["seeds"][0] for f in record["frames"]][:4] == [5, 5, 5, 8]  # keyframe seed = --seed + frame
    assert len(record["checkpoint"]["weights_sha256"]) == 64

    again = tmp_path / "again.gif"
    assert gif("--from-json", str(tmp_path / "first.gif.json"), "--out", str(again), "--no-cache",
               "--checkpoint", str(tiny_file)) == 0  # fmt: skip
    assert again.read_bytes() == first.read_bytes()


def test_spacing_is_recorded_and_an_old_sidecar_means_leading(tiny_file, tmp_path):
    out = tmp_path / "t.gif"
    assert gif("0: a red circle", "2: a blue square", "--steps", "2", "--spacing", "trailing", "--out", str(out),
               "--checkpoint", str(tiny_file), "--no-cache") == 0  # fmt: skip
    record = json.loads((tmp_path / "t.gif.json").read_text())
    assert record["settings"]["spacing"] == "trailing" and record["checkpoint"]["spacing"] == "trailing"
    del record["settings"]["spacing"]  # as sidecars were written before --spacing: every sampler ran leading
    (tmp_path / "old.json").write_text(json.dumps(record))
    assert read_sidecar(tmp_path / "old.json")[1].spacing == "leading"


def test_plain_prompts_spread_over_frames(tiny_file, tmp_path):
    out = tmp_path / "spread.gif"
    assert gif("a red circle", "a blue square", "--frames", "5", "--steps", "2", "--out", str(out),
               "--checkpoint", str(tiny_file), "--no-cache") == 0  # fmt: skip
    record = json.loads((tmp_path / "spread.gif.json").read_text())
    assert [k["frame"] for k in record["keyframes"]] == [0, 4] and len(record["frames"]) == 5


@pytest.mark.parametrize(
    "args, message",
    [
        (["0 a red circle"], "keyframe arguments, line 1: missing ':'"),
        (["0: a", "0: b"], "line 2: frame 0 does not come after frame 0"),
        (["3: a"], "first keyframe must be at frame 0"),
        (["0: a", "--sampler", "euler_a"], "--sampler euler_a: GIFs need a deterministic sampler"),
        (["--from-json", "x.json", "--frames", "5"], "--from-json takes the keyframes and settings"),
        (["0: a", "--strength", "1.5"], "--strength 1.5 must be in (0, 1]"),
        (["0: a", "--feedback", "--batch", "2"], "--batch cannot apply with --feedback"),
        (["0: a", "--out", "x.webm"], "write .gif, .mp4, or a folder"),
        (["0: a", "--width", "60"], "--width 60 is not a positive multiple of 8"),
        (["--keyframes", "missing.txt"], "missing.txt: no such keyframes file"),
        (["--from-json", "missing.json"], "missing.json: no such sidecar file"),
        ([], "no keyframes"),
    ],
)
def test_bad_input_is_one_clear_line(tiny_file, tmp_path, capsys, args, message):
    assert gif(*args, "--checkpoint", str(tiny_file), "--no-cache") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_wrong_weights_for_a_sidecar_are_refused(tiny_file, tmp_path, capsys):
    out = tmp_path / "a.gif"
    assert gif("0: a red circle", "2: a blue square", "--steps", "2", "--out", str(out), "--checkpoint",
               str(tiny_file), "--no-cache") == 0  # fmt: skip
    record = json.loads((tmp_path / "a.gif.json").read_text())
    record["checkpoint"]["weights_sha256"] = "0" * 64
    (tmp_path / "b.json").write_text(json.dumps(record))
    assert gif("--from-json", str(tmp_path / "b.json"), "--out", str(tmp_path / "b.gif"), "--no-cache") == 2
    assert "not the weights this run was made with" in capsys.readouterr().err
    assert not (tmp_path / "b.gif").exists()


def test_user_errors_exit_without_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sd", "gif", "0: a", "5: b", "4: c"], capture_output=True,
                            text=True, cwd=REPO)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "error: keyframe arguments, line 3: frame 4 does not come after frame 5 (line 2)"

