"""Few-step students of a shipped model: consistency distillation, then a short adversarial fine-tune for 1 step.

    python -m sd.train.distill --base tiny-shapes          # writes outputs/distill/tiny-shapes/
    python -m sd.train.distill --base mobile-tiny
    torchrun --standalone --nproc_per_node 2 -m sd.train.distill --base tiny-shapes ...

Stage 1: the student, started from the teacher's UNet, learns to map any point x_t of the guided teacher's
ODE to its end; guidance w = 5 is baked in, so it samples without guidance in 1-8 LCM steps. By default
(sd/train/trajectory.py) the teacher's ODE is solved once per training trajectory and the student regressed
on its end; with --stage1 lcm (sd/train/consistency.py, LCM) it agrees with its EMA copy one DDIM jump
(20 timesteps) further down instead.
Stage 2 (sd/train/adversarial.py, UFOGen): the stage-1 student, read as x0_hat = f(x_t, t) at t = 999 or a
grid t, against a discriminator started from the teacher's UNet encoder, on x0_hat and data x0 both noised to
a t' < t; plus the reconstruction || x0_hat - target ||^2, the target the teacher's ODE end (after the
solved trajectories) or the data x0 (UFOGen's, after LCM). It is meant to sharpen the single step.

The text encoder and VAE are the base model's, frozen: the students are UNet-only files (sd/loading/student.py)
that load as the base model with their UNet, `--out`/stage1-consistency.safetensors (LCM, 2 steps) and
`--out`/stage2-adversarial.safetensors (LCM, 1 step), rewritten at every save. Data: the shipped training set
(same generator, seed and size) as latents of the base model's VAE, cached (sd/train/latent_cache.py).
All randomness of an iteration is drawn for the global batch from the iteration number and split across
ranks, so N ranks compute what one process does. Re-running the same command resumes from `--out`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from tqdm.auto import tqdm

from sd.data.captions import canonical_caption
from sd.data.dataset import generate, sample_scenes
from sd.errors import UserError
from sd.eval.adherence import evaluate_adherence
from sd.eval.classifier import load_classifier
from sd.file_hash import file_sha256
from sd.loading.checkpoint import load_checkpoint
from sd.loading.checkpoint_types import Checkpoint, SamplingDefaults
from sd.loading.student import STUDENT_GIF, save_student
from sd.paths import SHIPPED_MODELS
from sd.pipeline import StableDiffusionPipeline
from sd.schedule import add_noise
from sd.train.adversarial import Discriminator, discriminator_loss, generator_losses
from sd.train.consistency import (
    GRID_POINTS,
    HUBER_C,
    consistency_function,
    consistency_loss,
    distillation_grid,
    grid_index,
    teacher_ddim_jump,
)
from sd.train.curves import plot_curves
from sd.train.distributed import Dist, barrier, check_ranks_identical, cleanup, setup, wrap
from sd.train.ema import EMA
from sd.train.latent_cache import DEFAULT_CACHE, cached_latents
from sd.train.lr_schedule import warmup_cosine
from sd.train.state import load_state, save_state
from sd.train.text_to_image import batch_for_step, encode_latents
from sd.train.trajectory import (
    CHUNK,
    ONE_STEP_SHARE,
    TEACHER_TIMES,
    chunk_draws,
    load_chunks,
    solve_chunks,
    solve_teacher,
    trajectory_draws,
    trajectory_loss,
)

VAL_SEED = 1_000_000  # validation prompts and noise: far from `python -m sd eval`'s seeds (0 ..)
VAL_STEPS = (1, 2, 4)  # LCM steps the validation adherence is measured at
# the stage-1 student's own sampling: its best step count in the CPU runs (docs/distillation.md)
STAGE1_DEFAULTS = {"trajectory": SamplingDefaults("lcm", 2, 1.0, **STUDENT_GIF),
                   "lcm": SamplingDefaults("lcm", 4, 1.0, **STUDENT_GIF)}  # fmt: skip
STAGE2_DEFAULTS = SamplingDefaults("lcm", 1, 1.0, **STUDENT_GIF)
STAGE1_RECIPES = {  # flag -> its default per --stage1 method
    "consistency_steps": {"trajectory": 6000, "lcm": 4000},
    "lr": {"trajectory": 1e-4, "lcm": 5e-5},
    "ship_ema_decay": {"trajectory": 0.99, "lcm": 0.999},
    "stage2_target": {"trajectory": "ode", "lcm": "data"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sd.train.distill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    bases = [name for name in SHIPPED_MODELS if not name.endswith("-distilled")]
    p.add_argument("--base", default="tiny-shapes", help=f"the teacher: {' or '.join(bases)}, or a .safetensors path")
    p.add_argument("--out", type=Path, help="folder for states, students and curves (default outputs/distill/BASE)")
    p.add_argument("--stage1", choices=("trajectory", "lcm"), default="trajectory",
                   help="stage 1's targets: the teacher's ODE solved to its end (sd/train/trajectory.py), or LCM's "
                   "one DDIM jump against the student's EMA (sd/train/consistency.py)")  # fmt: skip
    p.add_argument("--trajectories", type=int, default=8192,
                   help=f"--stage1 trajectory: teacher ODE solutions to regress on ({CHUNK} x N)")  # fmt: skip
    p.add_argument("--one-step-share", type=float, default=ONE_STEP_SHARE,
                   help="--stage1 trajectory: extra share of each batch drawn at t = 999, the one point 1-step "
                   f"sampling uses (default {ONE_STEP_SHARE})")  # fmt: skip
    p.add_argument("--consistency-steps", type=int, default=None,
                   help="stage 1 iterations (default 6000 for trajectory, 4000 for lcm)")  # fmt: skip
    p.add_argument("--adversarial-steps", type=int, default=500, help="stage 2 iterations (0: no stage 2)")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop (and save) after this many iterations of both stages together (stage 1's first); "
                   "the learning-rate schedules still span each stage's steps")  # fmt: skip
    p.add_argument("--batch", type=int, default=64, help="global batch, split across ranks")
    p.add_argument("--guidance", type=float, default=5.0,
                   help="teacher's guidance w, baked in: eps_u + w (eps_c - eps_u)")  # fmt: skip
    p.add_argument("--lr", type=float, default=None, help="stage 1 peak learning rate (default 1e-4 trajectory, "
                   "5e-5 lcm)")  # fmt: skip
    p.add_argument("--ema-decay", type=float, default=0.95, help="--stage1 lcm: target network (EMA) decay, as LCM")
    p.add_argument("--ship-ema-decay", type=float, default=None,
                   help="stage 1 EMA that ships, stage 2's start (default 0.99 trajectory, 0.999 lcm)")  # fmt: skip
    p.add_argument("--stage2-target", choices=("ode", "data"), default=None,
                   help="stage 2's reconstruction target: the teacher's ODE end (needs --stage1 trajectory; its "
                   "default) or the data, as UFOGen (the default after --stage1 lcm)")  # fmt: skip
    p.add_argument("--gen-lr", type=float, default=2e-5, help="stage 2 generator learning rate")
    p.add_argument("--disc-lr", type=float, default=1e-4, help="stage 2 discriminator learning rate")
    p.add_argument("--w-adv", type=float, default=0.1, help="stage 2 weight of the adversarial term")
    p.add_argument("--w-rec", type=float, default=1.0, help="stage 2 weight of the reconstruction term")
    p.add_argument("--one-step-prob", type=float, default=0.5, help="stage 2: share of the batch at t = 999")
    p.add_argument("--gen-ema-decay", type=float, default=0.99, help="stage 2 generator EMA decay; it is shipped")
    p.add_argument("--train-size", type=int, default=40000, help="training images (the shipped model's 40000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=250, help="save the state and the students every this many")
    p.add_argument("--val-every", type=int, default=None,
                   help="validate and log every this many iterations, a multiple of --save-every (default: "
                   "the same)")  # fmt: skip
    p.add_argument("--val-prompts", type=int, default=32, help="held-in prompts judged at 1/2/4 steps (0: none)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matrix products on CUDA (faster, ~1e-3 error)")
    p.add_argument("--latent-cache", type=Path, default=DEFAULT_CACHE, help=f"(default {DEFAULT_CACHE})")
    p.add_argument("--no-latent-cache", dest="latent_cache", action="store_const", const=None)
    args = p.parse_args(argv)
    for flag, defaults in STAGE1_RECIPES.items():
        if getattr(args, flag) is None:
            setattr(args, flag, defaults[args.stage1])
    if args.stage2_target == "ode" and args.stage1 != "trajectory":
        raise UserError("--stage2-target ode needs the solved trajectories of --stage1 trajectory")
    if args.trajectories < CHUNK or args.trajectories % CHUNK:
        raise UserError(f"--trajectories must be a positive multiple of {CHUNK}, got {args.trajectories}")
    for flag in ("consistency_steps", "batch", "save_every", "train_size"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be at least 1")
    if not 0 <= args.one_step_share < 1:
        raise UserError(f"--one-step-share must be in [0, 1), got {args.one_step_share}")
    if args.adversarial_steps < 0 or args.val_prompts < 0:
        raise UserError("--adversarial-steps and --val-prompts must be >= 0")
    args.val_every = args.val_every or args.save_every
    if args.val_every % args.save_every:
        raise UserError(f"--val-every {args.val_every} must be a multiple of --save-every {args.save_every}")
    return args


def base_file(base: str) -> tuple[str, Path]:
    """(name, path) of the teacher: a shipped model's name or a single-file checkpoint."""
    path = SHIPPED_MODELS.get(base, Path(base))
    if not path.is_file():
        raise UserError(f"--base {base}: no such model file ({path}); give a shipped model's name or a .safetensors")
    return (base if base in SHIPPED_MODELS else path.stem), path


@dataclass
class Setup:
    """What both stages share: the frozen base model, the data and the validation probe."""

    d: Dist
    base: Checkpoint  # fp32, on the device; its UNet is the teacher
    base_path: Path
    ids: torch.Tensor  # (N, 77) caption ids
    empty_ids: torch.Tensor  # (1, 77)
    mean: torch.Tensor  # (N, 4, 8, 8) posterior means
    std: torch.Tensor
    alphas_cumprod: torch.Tensor
    probe: dict  # fixed x_999, contexts and the teacher's 50-step ODE ends (main rank only)
    fixed: dict  # a fixed batch for the self-consistency loss (main rank only)
    trajectories: dict | None  # --stage1 trajectory: caption indices, states and ends (sd/train/trajectory.py)

    @torch.no_grad()
    def context(self, ids: torch.Tensor) -> torch.Tensor:
        return self.base.text_encoder(ids.to(self.d.device))  # (B, 77) -> (B, 77, C)


@torch.no_grad()
def ode_probe(base: Checkpoint, n: int, guidance: float, alphas_cumprod: torch.Tensor, device) -> dict:
    """Fixed x_999 for `n` held-in prompts and where the guided teacher's 50-step DDIM ODE takes them: the
    point a consistency student should reach in one step. MSE to it is a loss that keeps its meaning while
    the EMA target moves."""
    scenes = sample_scenes(n, VAL_SEED)
    ids = base.tokenizer([canonical_caption(s) for s in scenes])  # (n, 77)
    context = base.text_encoder(ids.to(device))
    uncond = base.text_encoder(base.tokenizer([""]).to(device)).expand(n, -1, -1)
    gen = torch.Generator().manual_seed(VAL_SEED)
    x = torch.randn((n, base.unet.config.in_channels, 8, 8), generator=gen).to(device)  # x_999
    grid, k = distillation_grid(len(alphas_cumprod))
    start, y = x, x
    for t_value in grid.flip(0).tolist():  # 999, 979, ..., 19
        t = torch.full((n,), t_value, device=device)
        y = teacher_ddim_jump(base.unet, y, t, (t - k).clamp(min=0), context, uncond, guidance, alphas_cumprod)
    return {"x": start, "t": torch.full((n,), int(grid[-1]), device=device), "context": context, "end": y}


@torch.no_grad()
def probe_distance(unet: nn.Module, probe: dict, alphas_cumprod: torch.Tensor) -> float:
    """MSE between the one-step f(x_999, 999) and the teacher's 50-step ODE end."""
    f = consistency_function(unet.eval(), probe["x"], probe["t"], probe["context"], alphas_cumprod)
    return torch.mean((f - probe["end"]) ** 2).item()


@torch.no_grad()
def fixed_batch(base: Checkpoint, ids: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, device) -> dict:
    """64 training latents with fixed noise, every grid point once and the lowest 14 twice: the stage-1 loss on
    them with the network as its own target measures how self-consistent it is, on data that never changes."""
    gen = torch.Generator().manual_seed(VAL_SEED)
    idx = torch.randperm(len(ids), generator=gen)[:64]
    z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)) * base.vae.config.scaling_factor
    noise = torch.randn(z0.shape, generator=gen)
    index = torch.arange(len(idx)) % GRID_POINTS  # (n,) every grid point
    context = base.text_encoder(ids[idx].to(device))
    return {"z0": z0.to(device), "noise": noise.to(device), "index": index.to(device), "context": context}


@torch.no_grad()
def self_consistency(unet: nn.Module, s: Setup, guidance: float) -> dict[str, float]:
    """The pseudo-Huber consistency loss on the fixed batch with `unet` as its own target: over all of it, and
    at its lowest and highest grid points. Consistency is learnt from t = 0 upwards (the target at t - k is
    only right once t - k is), so the low end falls first and the high end, which 1-step sampling needs, last."""
    b, teacher, index = s.fixed, s.base.unet, s.fixed["index"]
    spans = {"all t": index >= 0, "t <= 199": index < 10, "t >= 819": index >= GRID_POINTS - 10}
    losses = {}
    for name, keep in spans.items():
        uncond = s.context(s.empty_ids).expand(int(keep.sum()), -1, -1)
        losses[f"val: self-consistency, {name}"] = consistency_loss(
            unet.eval(), teacher, unet, b["z0"][keep], b["noise"][keep], index[keep], b["context"][keep], uncond,
            guidance, s.alphas_cumprod,
        ).item()  # fmt: skip
    return losses


def prepare(args: argparse.Namespace) -> Setup:
    d = setup(args.device)
    if d.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    name, path = base_file(args.base)
    args.out = args.out or Path("outputs/distill") / name
    args.out.mkdir(parents=True, exist_ok=True)
    base = load_checkpoint(path, dtype="fp32")
    if base.defaults is not None:
        raise UserError(f"--base {args.base} is itself a distilled student; distil from its base model")
    for module in (base.text_encoder, base.vae, base.unet):
        module.to(d.device).eval().requires_grad_(False)
    data = generate(args.train_size, args.seed, progress=d.main)
    mean, std = cached_latents(args.latent_cache, base.vae.state_dict(), data.images,
                               lambda: encode_latents(base.vae, data.images, d.device))  # fmt: skip
    alphas_cumprod = base.schedule.alphas_cumprod.to(d.device)
    n_probe = max(args.val_prompts, 8)
    probe = ode_probe(base, n_probe, args.guidance, alphas_cumprod, d.device) if d.main else {}
    ids, empty_ids = base.tokenizer(data.captions), base.tokenizer([""])
    fixed = fixed_batch(base, ids, mean, std, d.device) if d.main else {}
    s = Setup(d, base, path, ids, empty_ids, mean, std, alphas_cumprod, probe, fixed, None)
    if args.stage1 == "trajectory":
        s.trajectories = teacher_trajectories(args, s)
    return s


def teacher_trajectories(args, s: Setup) -> dict[str, torch.Tensor]:
    """The guided teacher's ODE from `--trajectories` x_999 for training captions, solved once into
    `--out`/trajectories/ (each rank solves its share of the chunks; every rank then loads them all), with each
    trajectory's caption encoded once here instead of at every iteration."""
    folder, count = args.out / "trajectories", args.trajectories // CHUNK
    shape = (s.base.unet.config.in_channels, *s.mean.shape[2:])  # (4, 8, 8)
    uncond = s.context(s.empty_ids).expand(CHUNK, -1, -1)

    def solve_one(chunk: int) -> dict[str, torch.Tensor]:
        index, x = chunk_draws(chunk, args.seed, len(s.ids), shape)
        states, end = solve_teacher(s.base.unet, x.to(s.d.device), s.context(s.ids[index]), uncond, args.guidance,
                                    s.base.schedule)  # fmt: skip
        return {"index": index, "states": states.cpu(), "end": end.cpu()}

    solve_chunks(folder, count, s.d.rank, s.d.world, solve_one, progress=s.d.main)
    barrier(s.d)
    trajectories = load_chunks(folder, count)
    captions = s.ids[trajectories["index"]]  # (N, 77)
    trajectories["context"] = torch.cat([s.context(ids).cpu() for ids in captions.split(CHUNK)])  # (N, 77, C)
    return trajectories


def global_batch(args, s: Setup, iteration: int) -> tuple[torch.Tensor, ...]:
    """(ids, z0, noise, generator for the stage's own draws) of one global batch, from the iteration alone.
    No caption dropout: the students are sampled without guidance, so never need the unconditional branch."""
    batch_args = SimpleNamespace(seed=args.seed, batch=args.batch, uncond_prob=0.0)
    ids, z0, _, noise = batch_for_step(batch_args, iteration, len(s.ids), s.empty_ids, s.ids, s.mean, s.std,
                                       s.base.vae.config.scaling_factor)  # fmt: skip
    return ids, z0, noise, iteration_generator(args, iteration)


def iteration_generator(args, iteration: int) -> torch.Generator:
    """The generator of an iteration's own draws (beyond the data batch), from its number alone."""
    return torch.Generator().manual_seed(2**40 + args.seed * 1_000_003 + iteration)


def adherence(s: Setup, unet: nn.Module, n: int, classifier) -> dict[int, float]:
    """Share of `n` held-in prompts with all five attributes right, at 1/2/4 LCM steps without guidance."""
    pipe = StableDiffusionPipeline(dataclasses.replace(s.base, unet=unet.eval()), device=s.d.device)
    return {steps: evaluate_adherence(pipe, n, VAL_SEED, held_out=False, steps=steps, sampler="lcm", guidance=1.0,
                                      classifier=classifier, progress=False)["all_correct"]
            for steps in VAL_STEPS}  # fmt: skip


class Stage:
    """The bookkeeping both stages share: resume, tqdm, s/iteration, validation, curves, the student file."""

    def __init__(self, args, s: Setup, name: str, first: int, steps: int, defaults: SamplingDefaults) -> None:
        self.args, self.s, self.name, self.first, self.steps, self.defaults = args, s, name, first, steps, defaults
        self.folder = args.out / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.history: dict[str, list] = {}
        self.scores: dict[str, list] = {f"val {n} step{'s' * (n > 1)}": [] for n in VAL_STEPS}
        self.classifier = load_classifier() if s.d.main and args.val_prompts else None
        self.clock = (time.perf_counter(), 0)  # (when, at which iteration)

    def end(self) -> int:
        stop = self.args.stop_after
        return self.steps if stop is None else max(0, min(self.steps, stop - self.first))

    def resume(self, modules: dict[str, object]) -> int:
        state = load_state(self.folder / "state.pt")
        if state is None:
            return 0
        if state["base_sha256"] != file_sha256(self.s.base_path):
            raise UserError(f"{self.folder / 'state.pt'}: distils another base model; use another --out")
        for key, module in modules.items():
            module.load_state_dict(state[key])
        self.history, self.scores = state["history"], state["scores"]
        self.clock = (time.perf_counter(), state["step"])
        return state["step"]

    def record(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.history.setdefault(key, []).append((step, value))

    def checkpoint(self, step: int, modules: dict[str, object], shipped: nn.Module, recipe: dict) -> None:
        """Save the state and write the student; every --val-every also validate `shipped`, log and draw curves."""
        s, args = self.s, self.args
        if step % args.val_every == 0 or step == self.end():
            self.validate(step, shipped)
        save_state(self.folder / "state.pt", {**{k: m.state_dict() for k, m in modules.items()},
                   "history": self.history, "scores": self.scores, "step": step,
                   "base_sha256": file_sha256(s.base_path)})  # fmt: skip
        recipe = recipe | {"iterations": step, "of": self.steps, "batch": args.batch, "train_size": args.train_size,
                           "seed": args.seed}  # fmt: skip
        save_student(shipped, args.out / f"{self.name}.safetensors", s.base_path, self.defaults, recipe)

    def validate(self, step: int, shipped: nn.Module) -> None:
        """The probes and the judge's scores of `shipped`, the curves, and a log line with s/iteration."""
        s, args, mode = self.s, self.args, shipped.training
        distance = probe_distance(shipped, s.probe, s.alphas_cumprod)
        consistency = self_consistency(shipped, s, args.guidance)
        self.record(step, {"val: 1-step MSE to the teacher's ODE end": distance, **consistency})
        low, all_t, high = (consistency[f"val: self-consistency, {k}"] for k in ("t <= 199", "all t", "t >= 819"))
        line = (f"{self.name} {step}/{self.steps}: self-consistency {low:.5f} / {all_t:.5f} / {high:.5f} "
                f"(t <= 199 / all / t >= 819), 1-step MSE {distance:.4f}")  # fmt: skip
        if step > self.clock[1]:  # time per iteration since the last save, validation excluded
            seconds = (time.perf_counter() - self.clock[0]) / (step - self.clock[1])
            line += f", {seconds:.2f} s/iteration (batch {args.batch})"
        if self.classifier is not None:
            scores = adherence(s, shipped, args.val_prompts, self.classifier)
            for n, score in scores.items():
                self.scores[f"val {n} step{'s' * (n > 1)}"].append((step, score))
            line += ", all five right at " + " / ".join(f"{n}: {v:.0%}" for n, v in scores.items()) + " steps"
        shipped.train(mode)
        plot_curves(self.history, self.folder / "loss.png", f"{self.name}: training losses and the 1-step probe")
        if any(self.scores.values()):
            plot_curves(self.scores, self.folder / "adherence.png", f"{self.name}: held-in prompts, LCM sampler",
                        ylabel="all five attributes right", log=False)  # fmt: skip
        tqdm.write(line)
        self.clock = (time.perf_counter(), step)

    def saves_at(self, step: int, end: int) -> bool:
        return self.s.d.main and ((step + 1) % self.args.save_every == 0 or step + 1 == end)


def stage1_loss(args, s: Setup, step: int, student: nn.Module, target: nn.Module | None,
                uncond: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """The stage-1 loss of iteration `step` on this rank's share of the global batch (`target`: LCM's EMA)."""
    d = s.d
    if args.stage1 == "trajectory":
        gen = iteration_generator(args, step)
        draws = trajectory_draws(args.batch, len(s.trajectories["end"]), gen, args.one_step_share)
        which, position = (d.shard(x) for x in draws)
        x_t = s.trajectories["states"][which, position].to(d.device)  # (b, 4, 8, 8) a point of the teacher's ODE
        end = s.trajectories["end"][which].to(d.device)  # (b, 4, 8, 8) where the teacher's ODE ends
        context = s.trajectories["context"][which].to(d.device)  # (b, 77, C) its caption, encoded
        return trajectory_loss(student, x_t, position.to(d.device), end, context, s.alphas_cumprod)
    ids, z0, noise, gen = global_batch(args, s, step)
    index = grid_index(args.batch, gen)
    ids, z0, noise, index = (d.shard(x).to(d.device) for x in (ids, z0, noise, index))
    context = s.context(ids)  # (b, 77, C)
    return consistency_loss(student, s.base.unet, target, z0, noise, index, context, uncond.expand(len(ids), -1, -1),
                            args.guidance, s.alphas_cumprod)  # fmt: skip


def stage1_recipe(args) -> dict:
    """What the student file records of stage 1."""
    common = {"stage": 1, "guidance": args.guidance, "shipped_ema": args.ship_ema_decay, "lr": args.lr}
    if args.stage1 == "trajectory":
        return common | {"method": "consistency distillation on the teacher's solved ODE (exact targets)",
                         "teacher_solver": f"DPM-Solver++(2M) over t = {', '.join(map(str, TEACHER_TIMES))}",
                         "trajectories": args.trajectories, "one_step_share": args.one_step_share,
                         "loss": "MSE to the ODE end"}  # fmt: skip
    return common | {"method": "latent consistency distillation (LCM)", "grid": f"{GRID_POINTS} points, one DDIM jump",
                     "loss": f"pseudo-Huber c = {HUBER_C}", "target_ema": args.ema_decay}  # fmt: skip


def train_consistency(args, s: Setup) -> nn.Module:
    """Stage 1; returns the EMA that ships. (With LCM, the target's fast EMA follows the student within ~20
    steps, and one Adam step moves the 1-step output visibly: x0_hat at t = 999 divides eps by
    sqrt(abar) = 0.068, hence a slower EMA to ship.)"""
    d = s.d
    stage = Stage(args, s, "stage1-consistency", 0, args.consistency_steps, STAGE1_DEFAULTS[args.stage1])
    student = copy.deepcopy(s.base.unet).train().requires_grad_(True)
    shipped = EMA(student, args.ship_ema_decay)
    target = EMA(student, args.ema_decay) if args.stage1 == "lcm" else None  # LCM's target network only
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0)
    modules = {"student": student, "shipped": shipped.model, "optimizer": optimizer}
    if target is not None:
        modules["target"] = target.model
    start = stage.resume(modules)
    ddp = wrap(student, d)
    uncond = s.context(s.empty_ids)  # (1, 77, C)
    recipe, name = stage1_recipe(args), {"trajectory": "MSE", "lcm": "pseudo-Huber"}[args.stage1]
    end = stage.end()
    if start == 0 and d.main:
        stage.checkpoint(0, modules, shipped.model, recipe)  # the teacher's own scores: where the curves start
    bar = tqdm(range(start, end), initial=start, total=args.consistency_steps, desc="consistency", disable=not d.main)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, args.consistency_steps, args.lr, max_warmup=100)
        loss = stage1_loss(args, s, step, ddp, target.model if target else None, uncond)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        if target is not None:
            target.update(student, step)
        shipped.update(student, step)
        if step % 10 == 0:
            stage.record(step, {f"train: {name}": loss.item()})
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if stage.saves_at(step, end):
            stage.checkpoint(step + 1, modules, shipped.model, recipe)
    check_ranks_identical(student, d)
    return shipped.model.eval()


def adversarial_times(args, gen: torch.Generator, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """t (999 for a share `one_step_prob` of the batch, else a grid point) and t' uniform in [0, t)."""
    one_step = torch.rand(args.batch, generator=gen) < args.one_step_prob
    t = torch.where(one_step, grid[-1], grid[grid_index(args.batch, gen)])  # (B,)
    t_disc = (torch.rand(args.batch, generator=gen) * t).long()  # (B,) 0 <= t' < t
    return t, t_disc


def stage2_batch(args, s: Setup, iteration: int, grid: torch.Tensor) -> dict[str, torch.Tensor]:
    """This rank's share of one stage-2 batch, on the device: the generator's input x_t at t, its
    reconstruction target, real data latents z0 of the same captions, t' and the noise both go to t' with."""
    if args.stage2_target == "data":  # UFOGen: x_t noised from the data, which is also the target
        ids, z0, noise, gen = global_batch(args, s, iteration)
        t, t_disc = adversarial_times(args, gen, grid)
        x_t = add_noise(s.alphas_cumprod.cpu(), z0, noise, t)  # q(x_t | x0)
        target = z0
    else:  # a point of a stored teacher ODE, its end the target; real data of the trajectory's caption
        gen = iteration_generator(args, iteration)
        which, position = trajectory_draws(args.batch, len(s.trajectories["end"]), gen, args.one_step_prob)  # (B,)
        index = s.trajectories["index"][which]  # (B,) caption (and image) of each trajectory
        ids = s.ids[index]  # (B, 77)
        scale = s.base.vae.config.scaling_factor
        z0 = (s.mean[index] + s.std[index] * torch.randn(s.mean[index].shape, generator=gen)) * scale  # (B, 4, 8, 8)
        x_t = s.trajectories["states"][which, position]  # (B, 4, 8, 8)
        target = s.trajectories["end"][which]  # (B, 4, 8, 8)
        t = torch.tensor(TEACHER_TIMES)[position]  # (B,)
        t_disc = (torch.rand(args.batch, generator=gen) * t).long()  # (B,) 0 <= t' < t
    disc_noise = torch.randn(z0.shape, generator=gen)  # (B, 4, 8, 8) the same for real and fake
    parts = {"x_t": x_t, "t": t, "target": target, "z0": z0, "t_disc": t_disc, "disc_noise": disc_noise}
    if args.stage2_target != "data":  # the trajectory's caption, encoded once at load
        parts["context"] = s.trajectories["context"][which]  # (B, 77, C)
    batch = {k: s.d.shard(v).to(s.d.device) for k, v in parts.items()}
    if "context" not in batch:
        batch["context"] = s.context(s.d.shard(ids))  # (b, 77) -> (b, 77, C)
    return batch


def train_adversarial(args, s: Setup, init: nn.Module) -> nn.Module:
    """Stage 2 from the stage-1 student; returns the generator's EMA, which is what ships."""
    d = s.d
    stage = Stage(args, s, "stage2-adversarial", args.consistency_steps, args.adversarial_steps, STAGE2_DEFAULTS)
    generator = copy.deepcopy(init).train().requires_grad_(True)
    torch.manual_seed(args.seed)  # the discriminator's new head: the same initial weights in every run and process
    discriminator = Discriminator(s.base.unet).to(d.device).train().requires_grad_(True)
    ema = EMA(generator, args.gen_ema_decay)
    opt_g = torch.optim.AdamW(generator.parameters(), lr=args.gen_lr, betas=(0.5, 0.999), weight_decay=0.0)
    opt_d = torch.optim.AdamW(discriminator.parameters(), lr=args.disc_lr, betas=(0.5, 0.999), weight_decay=0.0)
    modules = {"generator": generator, "ema": ema.model, "discriminator": discriminator, "opt_g": opt_g,
               "opt_d": opt_d}  # fmt: skip
    start = stage.resume(modules)
    ddp_g, ddp_d = wrap(generator, d), wrap(discriminator, d)
    grid, _ = distillation_grid(len(s.alphas_cumprod))
    second = "a UFOGen-style adversarial fine-tune" if args.w_adv else "a fine-tune on its reconstruction term alone"
    method = f"{stage1_recipe(args)['method']}, then {second}"
    recipe = {"stage": 2, "method": method, "guidance": args.guidance, "gen_lr": args.gen_lr,
              "disc_lr": args.disc_lr, "w_adv": args.w_adv, "w_rec": args.w_rec, "one_step_prob": args.one_step_prob,
              "gen_ema": args.gen_ema_decay, "discriminator": "teacher UNet encoder + 1x1 patch head",
              "loss": "non-saturating GAN + MSE reconstruction",
              "reconstruction_target": args.stage2_target}  # fmt: skip
    end = stage.end()
    if start == 0 and d.main and end > 0:
        stage.checkpoint(0, modules, ema.model, recipe)  # where stage 1 left off
    bar = tqdm(range(start, end), initial=start, total=args.adversarial_steps, desc="adversarial",
               disable=not d.main)  # fmt: skip
    for step in bar:
        b = stage2_batch(args, s, stage.first + step, grid)
        for opt, lr in ((opt_g, args.gen_lr), (opt_d, args.disc_lr)):
            for group in opt.param_groups:
                group["lr"] = warmup_cosine(step, args.adversarial_steps, lr, max_warmup=50)
        parts = generator_losses(ddp_g, discriminator, b["x_t"], b["t"], b["target"], b["t_disc"], b["disc_noise"],
                                 b["context"], s.alphas_cumprod)  # fmt: skip
        opt_g.zero_grad(set_to_none=True)
        (args.w_adv * parts["adv"] + args.w_rec * parts["rec"]).backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), 1.0)
        opt_g.step()
        ema.update(generator, step)
        d_loss = discriminator_loss(ddp_d, b["z0"], parts["x0_hat"], b["t_disc"], b["disc_noise"], b["context"],
                                    s.alphas_cumprod)  # fmt: skip
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        torch.nn.utils.clip_grad_norm_(discriminator.parameters(), 1.0)
        opt_d.step()
        if step % 10 == 0:
            stage.record(step, {"train: G adversarial": parts["adv"].item(), "train: G reconstruction":
                                parts["rec"].item(), "train: D": d_loss.item()})  # fmt: skip
            bar.set_postfix(adv=f"{parts['adv'].item():.3f}", rec=f"{parts['rec'].item():.4f}",
                            d=f"{d_loss.item():.3f}")  # fmt: skip
        if stage.saves_at(step, end):
            stage.checkpoint(step + 1, modules, ema.model, recipe)
    check_ranks_identical(generator, d)
    return ema.model.eval()


def train(args: argparse.Namespace) -> dict:
    s = prepare(args)
    student = train_consistency(args, s)
    result = {"consistency": student}
    if args.adversarial_steps and (args.stop_after is None or args.stop_after > args.consistency_steps):
        result["adversarial"] = train_adversarial(args, s, student)
    cleanup(s.d)
    return result


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
