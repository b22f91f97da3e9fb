"""The UI's parts without a browser: keyframe verdicts, output names, upload limits, model choices, the
stoppable job (a stopped run writes nothing), 'inspire me', and the CLI's safe default host."""

import re

import pytest

from sd.cli.main import build_parser
from sd.errors import UserError
from sd.gif.animate import animate
from sd.gif.keyframes import parse_keyframes
from sd.gif.settings import GifSettings
from sd.inspire import inspire
from sd.pipeline import StableDiffusionPipeline
from sd.ui import limits, models
from sd.ui.app import check_keyframes
from sd.ui.job import Job
from sd.ui.naming import output_path
from tests.tiny_checkpoint import tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_pipe():
    return StableDiffusionPipeline(tiny_checkpoint())


def test_keyframe_verdict_is_the_parsers_message():
    assert check_keyframes("0: a\n6: b") == "2 keyframes, 7 frames"
    assert check_keyframes("0: a\n6: b", loop=True) == "2 keyframes, 12 frames"
    assert check_keyframes("0: a\n6 b") == "**error:** keyframes, line 2: missing ':' (expected 'FRAME: PROMPT', " \
        "e.g. '0: a red circle')"  # fmt: skip
    assert check_keyframes("").startswith("**error:** keyframes: no keyframes")


def test_output_names_come_from_time_seed_and_counter(tmp_path):
    first, second = output_path(tmp_path, 7, ".gif"), output_path(tmp_path, 7, ".mp4")
    assert re.fullmatch(r"anim-\d{8}-\d{6}-seed7-\d{3}\.gif", first.name) and first.parent == tmp_path
    assert first.stem[-3:] != second.stem[-3:]
    with pytest.raises(ValueError):
        output_path(tmp_path, 0, "/../../etc")


def test_uploads_over_the_limit_are_refused(tmp_path, monkeypatch):
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * 3000)
    monkeypatch.setitem(limits.LIMITS, "audio", 2000)
    with pytest.raises(UserError, match=r"the audio is 0\.0 MB, over the 0 MB limit for audio uploads"):
        limits.check_upload(big, "audio")
    assert limits.check_upload(big, "image") == str(big) and limits.check_upload(None, "video") is None
    assert limits.MAX_UPLOAD == 200 * limits.MB


def test_model_choices(tmp_path, monkeypatch):
    monkeypatch.setitem(models.SHIPPED_MODELS, models.MOBILE, tmp_path / "mobile-tiny.safetensors")
    choices = models.model_choices()
    assert choices[0] == models.EMBEDDED and "not available" in choices[1]
    with pytest.raises(UserError, match="mobile-tiny is not available"):
        models.checkpoint_for(choices[1], None)
    (tmp_path / "mobile-tiny.safetensors").write_bytes(b"x")
    assert models.model_choices()[1] == models.MOBILE
    assert models.checkpoint_for(models.MOBILE, None) == tmp_path / "mobile-tiny.safetensors"
    with pytest.raises(UserError, match="no such checkpoint"):
        models.checkpoint_for(models.CHECKPOINT, str(tmp_path / "nope.safetensors"))
    assert models.vocabulary_for(models.CHECKPOINT) == "clip" and models.vocabulary_for(models.EMBEDDED) == "shapes"


def test_a_distilled_models_gifs_use_its_own_spacing_and_the_pages_sampling():
    page = GifSettings(steps=7, sampler="ddim", guidance=3.0)
    student = models.with_own_spacing(page, models.SHIPPED_MODELS["tiny-shapes-distilled"])
    assert (student.snap, student.rounds) == (0.25, 3) and (student.steps, student.sampler, student.guidance) == (
        7, "ddim", 3.0)  # fmt: skip
    assert models.with_own_spacing(page, models.SHIPPED_MODELS["tiny-shapes"]) == page


def run_job(pipe, out, stop_after: int | None):
    seen = []

    def run(on_frame):
        def count(image, done, total):
            seen.append(done)
            if stop_after is not None and len(seen) == stop_after:
                job.stop()
            on_frame(image, done, total)

        settings = GifSettings(steps=2, frame_spacing="planned")
        return animate("0: a\n5: b", out, settings, pipe=pipe, cache_dir=None, progress=False, on_frame=count)

    job = Job(run).start()
    events = list(job.events())
    job.join()
    return events, seen


def test_a_stopped_job_writes_nothing(tiny_pipe, tmp_path):
    events, seen = run_job(tiny_pipe, tmp_path / "a.gif", stop_after=2)
    assert [e.kind for e in events] == ["frame", "stopped"] and seen == [1, 2]
    assert list(tmp_path.iterdir()) == []  # no output, no sidecar, no partial file
    events, _ = run_job(tiny_pipe, tmp_path / "b.gif", stop_after=None)
    assert [e.kind for e in events] == ["frame"] * 6 + ["done"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.gif", "b.gif.json"]


def test_inspire_is_offline_seeded_and_follows_topics():
    text = inspire(3, 12, seed=4)
    assert text == inspire(3, 12, seed=4) and text != inspire(3, 12, seed=5)
    keyframes = parse_keyframes(text)
    assert [k.frame for k in keyframes] == [0, 12, 24]
    assert all(k.prompt.startswith(("a small ", "a large ")) and k.prompt.endswith(" background") for k in keyframes)
    assert all("heart" in k.prompt for k in parse_keyframes(inspire(3, 12, seed=1, topics="Hearts? heart!")))
    clip = parse_keyframes(inspire(2, 6, seed=0, topics="castle", vocabulary="clip"))
    assert [k.frame for k in clip] == [0, 6] and all("castle" in k.prompt for k in clip)


def test_ui_binds_to_this_machine_by_default():
    args = build_parser().parse_args(["ui"])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    assert build_parser().parse_args(["ui", "--host", "0.0.0.0", "--port", "8000"]).port == 8000
