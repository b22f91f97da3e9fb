"""Recovery: distil the pruned student from the unpruned teacher, as BK-SDM does (Kim et al. 2023).

    L = L_task + w_out * L_outKD + w_feat * L_featKD
    L_task   = || eps - eps_S(z_t, t, c) ||^2                        (the ordinary denoising loss)
    L_outKD  = || eps_T(z_t, t, c) - eps_S(z_t, t, c) ||^2           (match the teacher's prediction)
    L_featKD = sum_l || f_T^l - f_S^l ||^2                           (match every block's output)

The features f^l are the outputs of every input block, the middle block and every output block: pruning
keeps each block's interface, so teacher and student features have the same shapes. The text encoder
is frozen (it is not pruned). Data and batches are the training stage's (`sd.train.text_to_image`),
drawn from the step number, and `out/state.pt` makes a re-run of the same command resume.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sd.data.dataset import generate
from sd.eval.held_out import HeldOutBatch, denoising_loss
from sd.loading.checkpoint_types import Checkpoint
from sd.prune.surgery import prune_unet
from sd.schedule import add_noise
from sd.train.curves import plot_curves
from sd.train.lr_schedule import warmup_cosine
from sd.train.state import load_state, save_state
from sd.train.text_to_image import batch_for_step, encode_latents
from unet.pruned import PrunePlan


@dataclass(frozen=True)
class RecoverySettings:
    steps: int = 300
    batch: int = 64
    lr: float = 2e-4
    w_out: float = 1.0
    w_feat: float = 1.0
    train_size: int = 8000
    seed: int = 0
    uncond_prob: float = 0.1
    save_every: int = 50


class BlockOutputs:
    """Collects the output of every input, middle and output block on each forward call."""

    def __init__(self, unet: nn.Module) -> None:
        self.outputs: list[torch.Tensor] = []
        blocks = [*unet.input_blocks, unet.middle_block, *unet.output_blocks]
        self.handles = [b.register_forward_hook(lambda _m, _i, out: self.outputs.append(out)) for b in blocks]

    def take(self) -> list[torch.Tensor]:
        outputs, self.outputs = self.outputs, []
        return outputs


def distill_losses(student: nn.Module, teacher: nn.Module, z_t, t, context, noise, s_feats: BlockOutputs,
                   t_feats: BlockOutputs) -> dict[str, torch.Tensor]:  # fmt: skip
    with torch.no_grad():
        eps_teacher = teacher(z_t, t, context)  # (B, 4, h, w)
    eps_student = student(z_t, t, context)  # (B, 4, h, w)
    feats = zip(s_feats.take(), t_feats.take(), strict=True)
    return {
        "task": F.mse_loss(eps_student, noise),
        "out_kd": F.mse_loss(eps_student, eps_teacher),
        "feat_kd": sum(F.mse_loss(s, t_.detach()) for s, t_ in feats),
    }


def total_loss(parts: dict[str, torch.Tensor], settings: RecoverySettings) -> torch.Tensor:
    return parts["task"] + settings.w_out * parts["out_kd"] + settings.w_feat * parts["feat_kd"]


def recover(checkpoint: Checkpoint, plan: PrunePlan, out: Path, settings: RecoverySettings,
            val: HeldOutBatch | None = None, progress: bool = True) -> Checkpoint:  # fmt: skip
    """Distil `plan`'s pruned UNet from `checkpoint`'s and return the checkpoint with the student in it."""
    out.mkdir(parents=True, exist_ok=True)
    teacher = checkpoint.unet.eval().requires_grad_(False)
    student = prune_unet(teacher, plan).train().requires_grad_(True)
    text_encoder = checkpoint.text_encoder.eval().requires_grad_(False)
    data = generate(settings.train_size, settings.seed)
    mean, std = encode_latents(checkpoint.vae, data.images, torch.device("cpu"))
    ids, empty_ids = checkpoint.tokenizer(data.captions), checkpoint.tokenizer([""])  # (N, 77), (1, 77)
    batch_args = SimpleNamespace(seed=settings.seed, batch=settings.batch, uncond_prob=settings.uncond_prob)
    optimizer = torch.optim.AdamW(student.parameters(), lr=settings.lr, weight_decay=0.0)
    history: dict[str, list] = {"task": [], "out_kd": [], "feat_kd": [], "val": []}
    start = 0
    state = load_state(out / "state.pt")
    if state is not None:
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        history, start = state["history"], state["step"]
    elif val is not None:
        history["val"].append((0, denoising_loss(student, val)))
    s_feats, t_feats = BlockOutputs(student), BlockOutputs(teacher)
    alphas_cumprod = checkpoint.schedule.alphas_cumprod
    scale = checkpoint.vae.config.scaling_factor
    for step in tqdm(range(start, settings.steps), initial=start, total=settings.steps, desc="recovery",
                     disable=not progress):  # fmt: skip
        batch_ids, z0, t, noise = batch_for_step(batch_args, step, len(data), empty_ids, ids, mean, std, scale)
        with torch.no_grad():
            context = text_encoder(batch_ids)  # (B, 77) -> (B, 77, C)
        z_t = add_noise(alphas_cumprod, z0, noise, t)  # q(z_t | z_0)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, settings.steps, settings.lr, max_warmup=50)
        parts = distill_losses(student, teacher, z_t.float(), t, context, noise, s_feats, t_feats)
        optimizer.zero_grad(set_to_none=True)
        total_loss(parts, settings).backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        if step % 10 == 0:
            for name, value in parts.items():
                history[name].append((step, value.item()))
        if (step + 1) % settings.save_every == 0 or step + 1 == settings.steps:
            if val is not None:
                student.eval()
                history["val"].append((step + 1, denoising_loss(student, val)))
                s_feats.take()
                student.train()
            save_state(out / "state.pt", {"student": student.state_dict(), "optimizer": optimizer.state_dict(),
                                          "history": history, "step": step + 1})  # fmt: skip
            plot_curves(history, out / "recovery.png", "recovery: task, output KD, feature KD; held-out loss")
    for handle in s_feats.handles + t_feats.handles:
        handle.remove()
    return replace(checkpoint, unet=student.eval().requires_grad_(False))
