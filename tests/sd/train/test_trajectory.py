"""The exact-target stage 1 (sd/train/trajectory.py): the teacher's ODE solved to its end, stored in chunks."""

import torch

from sd.samplers.lcm import lcm_timesteps
from sd.schedule import SD15_SCHEDULE
from sd.train.trajectory import (
    CHUNK,
    ONE_STEP_SHARE,
    TEACHER_TIMES,
    load_chunks,
    solve_chunks,
    solve_teacher,
    trajectory_draws,
)


def test_the_teacher_is_solved_at_every_timestep_lcm_samples():
    for steps in (1, 2, 4, 8):
        assert set(lcm_timesteps(steps).tolist()) <= set(TEACHER_TIMES), steps
    assert list(TEACHER_TIMES) == sorted(TEACHER_TIMES, reverse=True) and TEACHER_TIMES[0] == 999


class PointMasses(torch.nn.Module):
    """The exact eps of a data distribution that is a point: mu_u for the empty caption, mu_c for the other
    (the context's first entry tells them apart). Its ODE is a straight line to the point:
    x_t = sqrt(abar_t) mu + sqrt(1 - abar_t) eps_0 with eps_0 fixed."""

    def __init__(self, mu_u: torch.Tensor, mu_c: torch.Tensor) -> None:
        super().__init__()
        self.mu_u, self.mu_c = mu_u, mu_c

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        a = SD15_SCHEDULE.alphas_cumprod[t.long()][:, None, None, None]
        repeat = len(x) // len(self.mu_c)  # the solver runs both captions in one call
        mu = torch.where(
            context[:, :1, :1, None] > 0, self.mu_c.repeat(repeat, 1, 1, 1), self.mu_u.repeat(repeat, 1, 1, 1)
        )
        return (x - a.sqrt() * mu) / (1 - a).sqrt()


def test_the_solver_follows_the_guided_ode_to_its_end():
    """Guidance moves the x0 estimate to mu_u + w (mu_c - mu_u); for point masses that is constant, so the
    guided ODE is the straight line to it from x_999, which DPM-Solver++(2M) follows exactly."""
    gen = torch.Generator().manual_seed(0)
    mu_u, mu_c, x = (torch.randn(3, 4, 8, 8, generator=gen) for _ in range(3))
    context, uncond = torch.ones(3, 77, 8), -torch.ones(3, 77, 8)
    states, end = solve_teacher(PointMasses(mu_u, mu_c), x, context, uncond, 5.0, SD15_SCHEDULE)
    target = mu_u + 5.0 * (mu_c - mu_u)
    abar = SD15_SCHEDULE.alphas_cumprod
    eps0 = (x - abar[999].sqrt() * target) / (1 - abar[999]).sqrt()
    assert states.shape == (3, len(TEACHER_TIMES), 4, 8, 8) and torch.equal(states[:, 0], x)
    for i, t in enumerate(TEACHER_TIMES):
        on_line = abar[t].sqrt() * target + (1 - abar[t]).sqrt() * eps0
        assert (states[:, i] - on_line).abs().max() < 1e-4, t  # measured <= 7.7e-6 (float32)
    assert (end - target).abs().max() < 1e-4  # measured 1.2e-5


def test_chunks_depend_on_their_number_only_and_are_solved_once(tmp_path):
    """Two ranks write what one process writes; a rerun solves only the missing chunks."""
    calls = []

    def solve_one(chunk: int) -> dict:
        calls.append(chunk)
        gen = torch.Generator().manual_seed(chunk)
        return {"index": torch.randint(0, 9, (CHUNK,), generator=gen), "end": torch.randn(CHUNK, 2, generator=gen)}

    solve_chunks(tmp_path / "one", 3, 0, 1, solve_one, progress=False)
    for rank in (0, 1):
        solve_chunks(tmp_path / "two", 3, rank, 2, solve_one, progress=False)
    assert calls == [0, 1, 2, 0, 2, 1]
    one, two = load_chunks(tmp_path / "one", 3), load_chunks(tmp_path / "two", 3)
    assert one["end"].shape == (3 * CHUNK, 2) and all(torch.equal(one[k], two[k]) for k in one)
    (tmp_path / "one" / "chunk-0001.pt").unlink()
    solve_chunks(tmp_path / "one", 3, 0, 1, solve_one, progress=False)
    assert calls[6:] == [1]


def test_the_one_step_share_adds_that_share_of_the_batch_at_t_999():
    """Uniform over TEACHER_TIMES plus `one_step_share` more at position 0 (t = 999): 0.25 + 0.75 / 11 = 0.318
    by default, 0.5 + 0.5 / 11 = 0.545 at 0.5; 4,096 draws, one standard error under 0.008."""
    for share, expected in ((0.0, 1 / 11), (ONE_STEP_SHARE, 0.25 + 0.75 / 11), (0.5, 0.5 + 0.5 / 11)):
        which, position = trajectory_draws(4096, 300, torch.Generator().manual_seed(0), share)
        assert which.max() < 300 and position.max() == len(TEACHER_TIMES) - 1
        assert abs((position == 0).float().mean().item() - expected) < 0.03, (share, expected)
