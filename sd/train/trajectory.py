"""Consistency distillation with exact targets: the teacher's ODE solved end to end, the student regressed on it.

A consistency model is defined as the map from any point of a probability-flow ODE trajectory to the
trajectory's end, f(x_t, t) = x_0. LCM (sd/train/consistency.py) never solves the ODE: it learns f by making
the student agree with its own EMA one DDIM jump further down, so the boundary condition f(x, 0) = x has to
spread up the 50-point grid one jump at a time (thousands of iterations before one step is usable). A tiny
teacher is cheap enough to solve the whole ODE instead, once per training trajectory, and hand the student
the exact target at every point:

    x_999 ~ N(0, I),  prompt c                                    (c from the training captions)
    x_{t_i}           the guided teacher's DPM-Solver++(2M) states at TEACHER_TIMES (w = 5 baked in)
    z_end             where the solver ends (t = 0)
    loss = || f_theta(x_{t_i}, t_i, c) - z_end ||^2                f = c_skip x + c_out x0_hat  (sd/samplers/lcm.py)

TEACHER_TIMES are every timestep the LCM sampler visits at 1, 2, 4 and 8 steps (999, 879, ..., 139), plus
three more near 0 for the solver's accuracy, so the student is trained at exactly the points it is sampled
at. At 1 step the target is Luhman & Luhman's (2021) knowledge distillation, noise -> the teacher's image; at
2-8 steps LCM re-noises f's output, which lands near (not on) a trajectory and inherits its target. The
targets are solved once and stored in chunks of CHUNK trajectories (resumable; each chunk depends only on its
number, so any number of ranks writes the same files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sd.atomic_output import atomic_output
from sd.samplers.dpmpp_2m import DPMSolverPlusPlus2MSampler
from sd.samplers.lcm import lcm_timesteps
from sd.schedule import NoiseSchedule
from sd.train.consistency import consistency_function

TEACHER_TIMES = tuple(int(t) for t in lcm_timesteps(8)) + (79, 39, 19)  # (11,) 999, 879, 759, ..., 139, 79, 39, 19
CHUNK = 256  # trajectories per stored file
ONE_STEP_SHARE = 0.25  # extra share of each batch drawn at t = 999, the one point 1-step sampling uses


@torch.no_grad()
def solve_teacher(teacher: nn.Module, x: torch.Tensor, context: torch.Tensor, uncond: torch.Tensor,
                  guidance: float, schedule: NoiseSchedule) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(states (B, T, 4, h, w) at TEACHER_TIMES, end (B, 4, h, w)) of the guided teacher's ODE from x = x_999."""
    solver = DPMSolverPlusPlus2MSampler(schedule)
    solver.set_custom_timesteps(np.array(TEACHER_TIMES), x.device)
    states = []
    for t in TEACHER_TIMES:
        states.append(x)
        tt = torch.full((2 * len(x),), t, device=x.device)
        eps_u, eps_c = teacher(torch.cat([x, x]), tt, torch.cat([uncond, context])).chunk(2)  # both in one call
        x = solver.step(eps_u + guidance * (eps_c - eps_u), t, x)  # (B, 4, h, w) one step down
    return torch.stack(states, 1), x  # (B, T, 4, h, w), (B, 4, h, w)


def chunk_draws(chunk: int, seed: int, n_captions: int, latent_shape: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """(caption indices (CHUNK,), x_999 (CHUNK, 4, h, w)) of one chunk, from its number alone."""
    gen = torch.Generator().manual_seed(2**41 + seed * 1_000_003 + chunk)
    index = torch.randint(0, n_captions, (CHUNK,), generator=gen)
    return index, torch.randn((CHUNK, *latent_shape), generator=gen)


def solve_chunks(folder: Path, count: int, rank: int, world: int, solve_one, progress: bool) -> None:
    """Write chunk files 0 .. count-1 not yet in `folder`, rank r taking chunks r, r + world, ...;
    `solve_one(chunk)` returns the chunk's dict of tensors."""
    folder.mkdir(parents=True, exist_ok=True)
    todo = [c for c in range(rank, count, world) if not (folder / f"chunk-{c:04d}.pt").exists()]
    for chunk in tqdm(todo, desc="solving the teacher's ODE", unit="chunk", disable=not progress):
        with atomic_output(folder / f"chunk-{chunk:04d}.pt", overwrite=True) as tmp:
            torch.save(solve_one(chunk), tmp)


def load_chunks(folder: Path, count: int) -> dict[str, torch.Tensor]:
    """All chunks concatenated: {"index": (N,), "states": (N, T, 4, h, w), "end": (N, 4, h, w)}."""
    parts = [torch.load(folder / f"chunk-{c:04d}.pt", map_location="cpu", weights_only=True) for c in range(count)]
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


def trajectory_draws(batch: int, n_trajectories: int, gen: torch.Generator,
                     one_step_share: float = ONE_STEP_SHARE) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(trajectory (B,), position on TEACHER_TIMES (B,)): uniform, plus `one_step_share` more at t = 999."""
    which = torch.randint(0, n_trajectories, (batch,), generator=gen)
    position = torch.randint(0, len(TEACHER_TIMES), (batch,), generator=gen)
    position = torch.where(torch.rand(batch, generator=gen) < one_step_share, 0, position)
    return which, position


def trajectory_loss(student: nn.Module, x_t: torch.Tensor, position: torch.Tensor, end: torch.Tensor,
                    context: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """|| f_theta(x_t, t) - z_end ||^2 for states x_t (B, 4, h, w) at TEACHER_TIMES[position]."""
    t = torch.tensor(TEACHER_TIMES, device=x_t.device)[position]  # (B,)
    return F.mse_loss(consistency_function(student, x_t, t, context, alphas_cumprod), end)
