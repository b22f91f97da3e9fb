"""Latent consistency distillation (LCM, Luo et al. 2023): the loss of one iteration, with guidance baked in.

The teacher's guided probability-flow ODE is walked one DDIM jump of k = 1000 // 50 = 20 timesteps on the
50-point grid the LCM sampler uses (t = 19, 39, ..., 999), and the student is asked to map both ends of
the jump to the same x0:

    x_t       = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps                          (t drawn from the grid)
    eps_w     = eps_u + w (eps_c - eps_u)                                       (the teacher, guidance w)
    x0_w      = (x_t - sqrt(1 - abar_t) eps_w) / sqrt(abar_t)
    x_{t-k}   = sqrt(abar_{t-k}) x0_w + sqrt(1 - abar_{t-k}) eps_w              (DDIM, eta = 0; t-k >= 0)
    f(x, s)   = c_skip(s) x + c_out(s) x0_hat(x, s)                             (sd/samplers/lcm.py)
    loss      = mean( sqrt((f_theta(x_t, t) - f_target(x_{t-k}, t-k))^2 + c^2) - c )    (pseudo-Huber)

f_target is the EMA ("target") copy of the student and gets no gradient. w here is the pipeline's guidance
scale (eps_u + w (eps_c - eps_u)); LCM's papers write eps_c + w' (eps_c - eps_u), so w = w' + 1. Fixed w
means the student needs no guidance input: it stays a plain UNet of the teacher's architecture and is
sampled with one conditional pass (guidance 1). The grid and the boundary condition are imported from the
LCM sampler, so the student is trained for exactly what it is sampled with.
"""

from __future__ import annotations

import torch
from torch import nn

from sd.samplers.lcm import LCMSampler, consistency_scalings, lcm_timesteps
from sd.schedule import add_noise

GRID_POINTS = LCMSampler().original_inference_steps  # 50: the grid the sampler's timesteps are picked from
HUBER_C = 0.001  # LCM's pseudo-Huber c (diffusers' train_lcm_distill_sd_wds.py default)


def distillation_grid(num_train_timesteps: int = 1000) -> tuple[torch.Tensor, int]:
    """(50,) grid timesteps 19, 39, ..., 999 in increasing order, and the jump k = 20."""
    grid = lcm_timesteps(GRID_POINTS, GRID_POINTS, num_train_timesteps)[::-1].copy()  # 50 steps = the whole grid
    return torch.from_numpy(grid), num_train_timesteps // GRID_POINTS


def bcast(values: torch.Tensor) -> torch.Tensor:
    return values[:, None, None, None]  # (B,) -> (B, 1, 1, 1)


def predict_x0(eps: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), one t per sample."""
    a = bcast(alphas_cumprod[t])  # (B, 1, 1, 1)
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def consistency_function(unet: nn.Module, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                         alphas_cumprod: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """f(x, t) = c_skip(t) x + c_out(t) x0_hat(x, t): what LCMSampler.step computes from the UNet's eps."""
    c_skip, c_out = consistency_scalings(t)  # (B,) each
    x0 = predict_x0(unet(x, t, context), x, t, alphas_cumprod)  # (B, 4, h, w)
    return bcast(c_skip.to(x)) * x + bcast(c_out.to(x)) * x0


@torch.no_grad()
def teacher_ddim_jump(teacher: nn.Module, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor,
                      context: torch.Tensor, uncond: torch.Tensor, guidance: float,
                      alphas_cumprod: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """x_{t-k}: one deterministic DDIM step of the guided teacher (both halves in one UNet call)."""
    eps_u, eps_c = teacher(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([uncond, context])).chunk(2)
    eps = eps_u + guidance * (eps_c - eps_u)  # (B, 4, h, w)
    x0 = predict_x0(eps, x_t, t, alphas_cumprod)
    return add_noise(alphas_cumprod, x0, eps, t_prev)  # x0 re-noised to t_prev with the predicted eps


def pseudo_huber(a: torch.Tensor, b: torch.Tensor, c: float = HUBER_C) -> torch.Tensor:
    """mean(sqrt((a - b)^2 + c^2) - c): squared error for |a - b| << c, absolute error beyond."""
    return (((a.float() - b.float()) ** 2 + c**2).sqrt() - c).mean()


def consistency_loss(student: nn.Module, teacher: nn.Module, target: nn.Module, z0: torch.Tensor,
                     noise: torch.Tensor, index: torch.Tensor, context: torch.Tensor, uncond: torch.Tensor,
                     guidance: float, alphas_cumprod: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """The LCM loss for latents z0 (B, 4, h, w) at grid positions `index` (B,), see the module docstring.

    `context` is the caption's text states (possibly the empty caption's), `uncond` the empty caption's:
    the teacher is guided from one to the other; the student and the target see `context` only.
    """
    grid, k = distillation_grid(len(alphas_cumprod))
    t = grid.to(index.device)[index]  # (B,) 19 ... 999
    t_prev = (t - k).clamp(min=0)  # (B,) the grid point below; 0 below t = 19
    x_t = add_noise(alphas_cumprod, z0, noise, t)  # q(x_t | x0)
    x_prev = teacher_ddim_jump(teacher, x_t, t, t_prev, context, uncond, guidance, alphas_cumprod)
    with torch.no_grad():
        f_target = consistency_function(target, x_prev, t_prev, context, alphas_cumprod)  # (B, 4, h, w)
    return pseudo_huber(consistency_function(student, x_t, t, context, alphas_cumprod), f_target)


def grid_index(count: int, generator: torch.Generator) -> torch.Tensor:
    """(count,) uniform positions on the 50-point grid."""
    return torch.randint(0, GRID_POINTS, (count,), generator=generator)

