"""`python -m sd bench distilled`: the student and its teacher timed side by side, with the UNet evaluations each
ran, on a stand-in student (the shipped model's own UNet saved as a 2-step LCM student), tiny settings."""

import json

import pytest

from sd.bench.distilled import GOAL_FRAMES, KEYFRAME_GAP, MEASURES, bench_keyframes, goals, task_name
from sd.cli.main import main
from sd.loading.checkpoint import load_checkpoint
from sd.loading.checkpoint_types import SamplingDefaults
from sd.loading.student import save_student
from sd.paths import DEFAULT_CHECKPOINT

STUDENT_STEPS = 2


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A student file of the shipped model: its base is found in weights/, its sampling is LCM, 2 steps."""
    path = tmp_path_factory.mktemp("student") / "student.safetensors"
    unet = load_checkpoint(DEFAULT_CHECKPOINT).unet
    return save_student(unet, path, DEFAULT_CHECKPOINT, SamplingDefaults("lcm", STUDENT_STEPS, 1.0), {"test": 1})


def test_the_table_counts_each_model_s_own_steps_and_evaluations(student, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "distilled", "--student", str(student), "--repeats", "1", "--frames", "3",
                 "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    record = json.loads((out / "distilled.json").read_text())
    teacher, pupil = record["models"]["teacher"], record["models"]["student"]
    assert (teacher["sampler"], teacher["guided"]) == ("dpmpp_2m", True)  # the GIF defaults: 20 guided steps
    assert (pupil["sampler"], pupil["steps"], pupil["guided"]) == ("lcm", STUDENT_STEPS, False)
    assert record["teacher_is_students_base"] and record["goals"] is None  # no 193-frame GIF asked for

    image = record["results"]["image"]
    assert image["student"]["steps"] == image["student"]["evaluations"] == image["student"]["rows"] == STUDENT_STEPS
    steps = teacher["steps"]  # guided: a step is one batched call for both branches, 2 evaluations
    assert image["teacher"]["steps"] == steps
    assert image["teacher"]["evaluations"] == image["teacher"]["rows"] == 2 * steps

    gif = record["results"]["3-frame GIF"]
    assert gif["teacher"]["frames"] == gif["student"]["frames"] == 3
    assert gif["teacher"]["evaluations"] == gif["teacher"]["rows"] == 2 * gif["teacher"]["steps"]  # guided: 2 each
    assert gif["student"]["evaluations"] == gif["student"]["steps"]  # unguided: 1 each...
    # ...and the default batch pairs unguided frames in a call; only a lone frame still runs as two rows
    assert gif["student"]["steps"] <= gif["student"]["rows"] < 2 * gif["student"]["steps"]
    assert 2 * STUDENT_STEPS <= gif["student"]["steps"] < gif["teacher"]["steps"]  # the keyframes in full, at least

    for task, r in record["results"].items():
        for key, label in MEASURES.items():
            ratio = r["student"][key] / r["teacher"][key]
            assert r["ratios"][key] == pytest.approx(ratio)
            assert f"| {task} | {label} |" in printed and f"| {r['ratios'][key]:.3f}x |" in printed
        assert r["teacher"]["seconds"] > 0 and r["student"]["seconds"] > 0
    written = (out / "distilled.md").read_text()
    assert written.strip() in printed and "| task | measure | teacher | student | student / teacher |" in written


def test_batch_applies_to_both_models(student, tmp_path, capsys):
    """--batch 1: the teacher as before, the student back to one frame a call, each lone frame run as two rows."""
    out = tmp_path / "bench"
    assert main(["bench", "distilled", "--student", str(student), "--repeats", "1", "--frames", "3",
                 "--batch", "1", "--out", str(out)]) == 0  # fmt: skip
    record = json.loads((out / "distilled.json").read_text())
    gif = record["results"]["3-frame GIF"]
    assert record["batch"] == 1 and gif["student"]["rows"] == 2 * gif["student"]["steps"]
    assert gif["teacher"]["rows"] == 2 * gif["teacher"]["steps"]
    assert "but --batch 1 for both" in capsys.readouterr().out


def test_student_snap_renders_fewer_student_frames_and_leaves_the_teacher_alone(student, tmp_path, capsys):
    runs = {}
    for snap in ("0", "0.5"):
        out = tmp_path / snap
        assert main(["bench", "distilled", "--student", str(student), "--repeats", "1", "--frames", "25",
                     "--student-snap", snap, "--out", str(out)]) == 0  # fmt: skip
        runs[snap] = json.loads((out / "distilled.json").read_text())
    assert runs["0.5"]["student_snap"] == 0.5 and "but --snap 0.5 for the student" in capsys.readouterr().out
    plain, snapped = (runs[s]["results"]["25-frame GIF"] for s in ("0", "0.5"))
    assert snapped["teacher"]["steps"] == plain["teacher"]["steps"]
    assert snapped["student"]["steps"] < plain["student"]["steps"]


def test_keyframes_every_24_frames_and_on_the_last():
    assert [k.frame for k in bench_keyframes(24)] == [0, 23]
    frames = [k.frame for k in bench_keyframes(GOAL_FRAMES)]
    assert frames == list(range(0, GOAL_FRAMES, KEYFRAME_GAP)) and len(frames) == 9
    prompts = [k.prompt for k in bench_keyframes(GOAL_FRAMES)]
    assert len(set(prompts)) == len(prompts)  # every transition changes the scene


def test_the_goals_are_on_the_193_frame_gif():
    ratios = {"seconds": 0.25, "steps": 0.2, "evaluations": 0.12, "rows": 0.2}
    verdict = goals({task_name(GOAL_FRAMES): {"ratios": ratios}})
    assert verdict["seconds"] == {"ratio": 0.25, "at_most": 0.3, "met": True}
    assert verdict["evaluations"] == {"ratio": 0.12, "at_most": 0.1, "met": False}
    assert goals({task_name(24): {"ratios": ratios}}) is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["--student", "missing.safetensors"], "missing.safetensors: no such checkpoint"),
        (["--student", str(DEFAULT_CHECKPOINT)], "not a distilled student"),
        (["--student", "STUDENT", "--frames", "24", "1"], "--frames 1: a GIF needs at least 2 frames"),
        (["--student", "STUDENT", "--repeats", "0"], "--repeats 0 must be at least 1"),
        (["--student", "STUDENT", "--batch", "0"], "--batch 0 must be at least 1"),
        (["--student", "STUDENT", "--student-snap", "0.7"], "--snap 0.7 must be between 0 and 0.5"),
    ],
)
def test_bad_input_is_one_error_line(student, given, message, tmp_path, capsys):
    argv = [str(student) if a == "STUDENT" else a for a in given]
    assert main(["bench", "distilled", *argv, "--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "distilled.md").exists()
