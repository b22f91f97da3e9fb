"""The shipped few-step students (weights/*-distilled.safetensors, `python -m sd.train.distill`): small, loaded
as their base model with their own UNet and sampling, exported for diffusers, and above an adherence floor.

The floors are on a fixed sample (48 held-in prompts from `python -m sd eval`'s seed 0, the judge's five
attributes all right), set well under what was measured so that a thread count's rounding cannot fail them.
The 1-step floors are far above what the undistilled teacher scores when sampled the same way (1 / 2 LCM steps:
22% / 84% on 32 prompts), so a student file holding the teacher's UNet fails them.
"""

import pytest
import torch

from sd.eval.adherence import evaluate_adherence
from sd.eval.classifier import load_classifier
from sd.file_hash import file_sha256
from sd.loading.checkpoint import load_checkpoint
from sd.loading.student import STUDENT_GIF, student_info
from sd.paths import SHIPPED_MODELS
from sd.pipeline import StableDiffusionPipeline

STUDENTS = {"tiny-shapes-distilled": "tiny-shapes", "mobile-tiny-distilled": "mobile-tiny"}
SAMPLE = 48
# name -> {steps: (floor, measured on SAMPLE)}; the default steps are each file's own
FLOORS = {
    "tiny-shapes-distilled": {1: (0.65, 0.896), 2: (0.85, 0.917)},
    "mobile-tiny-distilled": {1: (0.65, 0.833), 2: (0.80, 0.875)},
}


@pytest.mark.parametrize("name", STUDENTS)
def test_a_shipped_student_is_its_base_model_with_its_own_unet_and_sampling(name):
    path, base = SHIPPED_MODELS[name], SHIPPED_MODELS[STUDENTS[name]]
    info = student_info(path)
    assert info.base == base.name and info.base_sha256 == file_sha256(base)
    assert (info.defaults.sampler, info.defaults.guidance) == ("lcm", 1.0) and info.defaults.steps in FLOORS[name]
    assert {"snap": info.defaults.snap, "rounds": info.defaults.rounds} == STUDENT_GIF  # its GIFs' own spacing
    student, teacher = load_checkpoint(path), load_checkpoint(base)
    assert student.defaults == info.defaults
    for part in ("vae", "text_encoder"):
        theirs = getattr(teacher, part).state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in getattr(student, part).state_dict().items())
    moved = [k for k, v in student.unet.state_dict().items() if not torch.equal(v, teacher.unet.state_dict()[k])]
    assert len(moved) > 0.9 * len(student.unet.state_dict())  # a trained UNet, not the teacher's


def test_both_students_add_at_most_20_mb():
    assert sum(SHIPPED_MODELS[name].stat().st_size for name in STUDENTS) <= 20 * 10**6


@pytest.mark.slow
@pytest.mark.parametrize(("name", "steps"), [(name, steps) for name, floors in FLOORS.items() for steps in floors])
def test_a_shipped_student_clears_its_adherence_floor(name, steps):
    pipe = StableDiffusionPipeline(load_checkpoint(SHIPPED_MODELS[name]))
    result = evaluate_adherence(pipe, SAMPLE, 0, held_out=False, steps=steps, sampler="lcm", guidance=1.0,
                                classifier=load_classifier(), progress=False)  # fmt: skip
    floor, measured = FLOORS[name][steps]
    print(f"{name}, {steps} LCM steps: all five right on {result['all_correct']:.1%} (measured {measured:.1%})")
    assert result["all_correct"] >= floor
