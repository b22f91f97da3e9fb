"""Distillation of the shipped model (sd/train/distill.py): a short run of either stage-1 method brings the student
towards the teacher's ODE, both stages resume and write student files, and 2 ranks under torchrun equal one
process."""

import sys
from pathlib import Path

import pytest
import torch

from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.loading.student import STUDENT_GIF, student_info
from sd.paths import DEFAULT_CHECKPOINT
from sd.train import distill
from sd.train.trajectory import TEACHER_TIMES
from tests.sd.train.torchrun import TORCHRUN, run

SELF_CONSISTENCY = "val: self-consistency, all t"
LOW_T = "val: self-consistency, t <= 199"
ONE_STEP_MSE = "val: 1-step MSE to the teacher's ODE end"
TINY = ["--train-size", "64", "--batch", "8", "--trajectories", "256", "--device", "cpu"]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """Both stages, a few iterations each, validating (2 prompts) and saving every 2."""
    out = tmp_path_factory.mktemp("distill")
    args = ["--out", str(out), "--consistency-steps", "4", "--adversarial-steps", "2", "--save-every", "2",
            "--val-prompts", "2", "--latent-cache", str(out / "cache"), *TINY]  # fmt: skip
    return out, args, distill.train(distill.parse_args(args))


def short_stage1(out: Path, method: str, key: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """100 iterations of stage 1 at batch 32 (512 training images, 256 solved trajectories), validated every 25:
    the iterations and the values of the history entry `key`."""
    args = ["--out", str(out), "--stage1", method, "--consistency-steps", "100", "--adversarial-steps", "0",
            "--save-every", "25", "--val-prompts", "0", "--train-size", "512", "--batch", "32", "--trajectories",
            "256", "--device", "cpu", "--no-latent-cache"]  # fmt: skip
    distill.train(distill.parse_args(args))
    history = torch.load(out / "stage1-consistency" / "state.pt", weights_only=True)["history"]
    print(key, history[key])
    return tuple(zip(*history[key], strict=True))


@pytest.mark.slow
def test_a_short_lcm_run_lowers_its_loss(tmp_path):
    """LCM's stage 1 for 100 iterations (about 2.5 minutes on 2 cores): the student's self-consistency on the
    fixed batch falls where consistency is learnt first, at the grid's low end.
    Measured: 0.01177, 0.01148, 0.01128, 0.01110, 0.01101 (-6.5%); over all t 0.01901 -> 0.01901, as the high
    end first rises (0.0567 -> 0.0608 at 25) and then falls (0.0548 at 100): it learns from the low end up."""
    steps, losses = short_stage1(tmp_path, "lcm", LOW_T)
    assert steps == (0, 25, 50, 75, 100)
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)) and losses[-1] < 0.96 * losses[0], losses
    assert (tmp_path / "stage1-consistency" / "loss.png").exists()


@pytest.mark.slow
def test_a_short_trajectory_run_brings_one_step_towards_the_teacher(tmp_path):
    """The default stage 1 for 100 iterations: the one-step output's MSE to the teacher's 50-step ODE end on the
    fixed validation prompts (which it never trains on) falls at every validation.
    Measured: 0.3697, 0.3665, 0.3222, 0.2952, 0.2887 (-22%), at 0.8 s an iteration on a busy core."""
    steps, distances = short_stage1(tmp_path, "trajectory", ONE_STEP_MSE)
    assert steps == (0, 25, 50, 75, 100)
    assert all(b < a for a, b in zip(distances, distances[1:], strict=False)), distances
    assert distances[-1] < 0.85 * distances[0], distances


def test_both_stages_write_students_that_load_as_the_base_model(short_run):
    out, _, result = short_run
    base = load_checkpoint(DEFAULT_CHECKPOINT)
    for name, steps, trained in (("stage1-consistency", 2, result["consistency"]),
                                 ("stage2-adversarial", 1, result["adversarial"])):  # fmt: skip
        path = out / f"{name}.safetensors"
        info = student_info(path)
        assert info.base == DEFAULT_CHECKPOINT.name and (info.defaults.sampler, info.defaults.steps) == ("lcm", steps)
        assert info.defaults.guidance == 1.0 and info.recipe["iterations"] == info.recipe["of"]
        assert {"snap": info.defaults.snap, "rounds": info.defaults.rounds} == STUDENT_GIF
        student = load_checkpoint(path)
        assert student.defaults == info.defaults and student.name == path.name
        assert all(torch.equal(v, base.vae.state_dict()[k]) for k, v in student.vae.state_dict().items())
        for key, value in trained.state_dict().items():  # the shipped (EMA) weights, stored in fp16
            assert torch.equal(student.unet.state_dict()[key], value.half().float()), key
    assert path.stat().st_size < 9 * 2**20  # the UNet alone, fp16


def test_a_rerun_resumes_instead_of_starting_over(short_run):
    out, args, _ = short_run
    before = torch.load(out / "stage2-adversarial" / "state.pt", weights_only=True)
    distill.train(distill.parse_args([*args, "--adversarial-steps", "3"]))
    after = torch.load(out / "stage2-adversarial" / "state.pt", weights_only=True)
    assert (before["step"], after["step"]) == (2, 3)
    stage1 = torch.load(out / "stage1-consistency" / "state.pt", weights_only=True)
    assert stage1["step"] == 4 and [s for s, _ in stage1["history"][SELF_CONSISTENCY]] == [0, 2, 4]
    assert [s for s, _ in stage1["scores"]["val 4 steps"]] == [0, 2, 4]
    assert (out / "stage1-consistency" / "adherence.png").exists()


def test_stage2_reconstructs_the_teachers_ode_end_against_real_latents_of_the_same_captions(short_run):
    """After solved trajectories, stage 2's generator starts from a stored ODE state, its reconstruction target
    is that trajectory's end, and the discriminator's real latents are the training images of its captions."""
    out, args, _ = short_run
    parsed = distill.parse_args(args)
    assert parsed.stage2_target == "ode"  # the default after --stage1 trajectory
    s = distill.prepare(parsed)
    grid, _ = distill.distillation_grid(len(s.alphas_cumprod))
    b = distill.stage2_batch(parsed, s, 7, grid)
    states, ends, index = (s.trajectories[k] for k in ("states", "end", "index"))
    assert set(b["t"].tolist()) <= set(TEACHER_TIMES) and bool((b["t_disc"] < b["t"]).all())
    # 400 draws: the share is 0.545 +- 0.025
    one_step = torch.cat([distill.stage2_batch(parsed, s, i, grid)["t"] == 999 for i in range(50)]).float().mean()
    assert abs(one_step - (0.5 + 0.5 / len(TEACHER_TIMES))) < 0.1, one_step  # --one-step-prob 0.5 + a share of the rest
    scale = s.base.vae.config.scaling_factor
    for x_t, t, target, z0, context in zip(b["x_t"], b["t"], b["target"], b["z0"], b["context"], strict=True):
        which = int(torch.nonzero((ends == target).flatten(1).all(1))[0])  # the trajectory it came from
        assert torch.equal(x_t, states[which, TEACHER_TIMES.index(int(t))])
        image = index[which]
        assert (context - s.context(s.ids[image : image + 1])[0]).abs().max() < 1e-5  # its caption, read from the cache
        assert (z0 / scale - s.mean[image]).abs().max() <= 6 * s.std[image].max()  # a draw of that image's latent
    # Both stages read each trajectory's caption encoded once at load: the same as encoding it at the iteration.
    for which in (0, 100, 255):
        encoded = s.context(s.ids[index[which] : index[which] + 1])[0]  # (77, C)
        assert (s.trajectories["context"][which] - encoded).abs().max() < 1e-5
    with pytest.raises(UserError, match="--stage2-target ode needs"):
        distill.parse_args(["--stage1", "lcm", "--stage2-target", "ode"])
    assert distill.parse_args(["--stage1", "lcm"]).stage2_target == "data"  # UFOGen's, as before
    with pytest.raises(UserError, match="--one-step-share must be in"):
        distill.parse_args(["--one-step-share", "1"])


LR, STEPS = 1e-3, 2


@pytest.mark.parametrize("stage1", ["trajectory", "lcm"])
def test_two_ranks_under_torchrun_equal_one_process(tmp_path, stage1):
    args = ["--stage1", stage1, "--trajectories", "256", "--consistency-steps", str(STEPS),
            "--adversarial-steps", str(STEPS), "--save-every", str(STEPS),
            "--lr", str(LR), "--gen-lr", str(LR), "--disc-lr", str(LR), "--train-size", "64", "--batch", "8",
            "--val-prompts", "0", "--device", "cpu", "--no-latent-cache"]  # fmt: skip
    module = ["-m", "sd.train.distill"]
    single = run([sys.executable, *module, "--out", str(tmp_path / "one"), *args])
    double = run([*TORCHRUN, *module, "--out", str(tmp_path / "two"), *args])
    assert double.count("max weight difference across 2 ranks = 0") == 2, double[-2000:]  # after each stage
    assert "ranks identical" not in single
    # As in test_training.py: Adam moves an element by about lr per step whatever its gradient, so elements
    # with ~0 gradient may differ by rounding; almost all must agree, none beyond Adam's bound. (Stage 2's
    # beta1 = 0.5 lets the second step reach sqrt(10/9) lr: weights 1/3, 2/3 against 1/2, 1/2 in v.)
    bound = 2 * 1.06 * LR * STEPS
    for stage, key in (("stage1-consistency", "student"), ("stage2-adversarial", "generator"),
                       ("stage2-adversarial", "discriminator")):  # fmt: skip
        one = torch.load(tmp_path / "one" / stage / "state.pt", weights_only=True)[key]
        two = torch.load(tmp_path / "two" / stage / "state.pt", weights_only=True)[key]
        off = total = 0
        for name in one:
            difference = (two[name] - one[name]).abs()
            assert difference.max() <= bound, (stage, key, name, difference.max().item())
            off += int((difference > 1e-5).sum())
            total += difference.numel()
        print(f"{stage} {key}: {off} of {total} elements differ by more than 1e-5")
        assert off / total < 0.01
