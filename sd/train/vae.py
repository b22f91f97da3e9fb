"""Stage 1: train the embedded model's autoencoder on generated shapes.

    python -m sd.train.vae --out outputs/train/vae --steps 5000 --lr 1e-3
    torchrun --standalone --nproc_per_node 2 -m sd.train.vae --out outputs/train/vae --steps 5000 --lr 1e-3

Loss = mean(w * |x - x_hat|) + edge_weight * mean(w * |grad x - grad x_hat|) + kl_weight * KL(q(z|x) || N(0, I))
with w = 1 + (fg_weight - 1) * mask. The flat background is most of every image, so plain L1 is small while
shapes are still blobs; weighting the shape's pixels (we have its mask) makes the loss care about what
matters, and the gradient term (finite differences) about the outline, which tells a star from a blob.
The KL term is tiny, as in SD, so latents stay close to the data rather than to N(0, I); `scaling_factor`
then rescales them.
Re-running the same command resumes from `--out`/state.pt.

    python -m sd.train.vae --out outputs/train/vae-between --init weights/tiny-shapes-vae.safetensors \
        --decoder-only --in-between-share 0.5 --steps 1500 --lr 2e-4

fine-tunes the decoder alone, so the latent space (and every diffusion model trained on it) stays as it is,
on data of which a share are ideal in-betweens (sd/data/in_between.py): colours between the 12 named ones,
sizes, positions and outlines between theirs. The shipped decoder draws every latent as one of the 12 named
colours, so a transition from blue to black cannot pass through dark blue, whatever the UNet draws.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from sd.data.dataset import ShapesData, generate
from sd.data.in_between import in_between_data
from sd.train.curves import plot_curves
from sd.train.distributed import Dist, check_ranks_identical, cleanup, setup, wrap
from sd.train.lr_schedule import warmup_cosine
from sd.train.state import load_state, save_state
from sd.train.vae_file import load_vae, save_vae
from vae.autoencoder import AutoencoderKL
from vae.config import TINY_VAE, VAEConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sd.train.vae", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("outputs/train/vae"))
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=32, help="global batch, split across ranks")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--kl-weight", type=float, default=1e-6)
    p.add_argument("--fg-weight", type=float, default=10.0)
    p.add_argument("--edge-weight", type=float, default=1.0)
    p.add_argument("--train-size", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--init", type=Path, help="start from this autoencoder file (stage 1's vae.safetensors)")
    p.add_argument("--decoder-only", action="store_true",
                   help="train the decoder alone (needs --init): latents and scaling factor stay --init's")  # fmt: skip
    p.add_argument("--in-between-share", type=float, default=0.0,
                   help="share of training images that are ideal in-betweens of two scenes (default 0)")  # fmt: skip
    args = p.parse_args(argv)
    if args.decoder_only and args.init is None:
        p.error("--decoder-only needs --init: the autoencoder whose encoder stays as it is")
    if not 0.0 <= args.in_between_share <= 1.0:
        p.error(f"--in-between-share {args.in_between_share}: give a share from 0 to 1")
    return args


def to_input(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B,64,64,3) -> (B,3,64,64)


class ReconstructionLoss(nn.Module):
    """One training step's loss as a module, so DistributedDataParallel can wrap it. The posterior noise is
    passed in (drawn for the global batch), so N ranks sample exactly what one process would."""

    def __init__(self, vae: AutoencoderKL, fg_weight: float, kl_weight: float, edge_weight: float) -> None:
        super().__init__()
        self.vae, self.fg_weight, self.kl_weight, self.edge_weight = vae, fg_weight, kl_weight, edge_weight

    def forward(self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        posterior = self.vae.encode(x)  # (B, 3, 64, 64) -> q(z|x) with mean, std (B, 4, 8, 8)
        recon = self.vae.decode(posterior.mean + posterior.std * noise)  # reparameterised z -> (B, 3, 64, 64)
        weight = 1.0 + (self.fg_weight - 1.0) * mask[:, None]  # (B, 1, 64, 64)
        kl = posterior.kl().mean() / x[0].numel()  # per pixel, like the L1 term
        error = x - recon  # (B, 3, 64, 64)
        dx = (error[..., :, 1:] - error[..., :, :-1]).abs() * weight[..., :, 1:]  # horizontal differences
        dy = (error[..., 1:, :] - error[..., :-1, :]).abs() * weight[..., 1:, :]  # vertical differences
        edges = dx.mean() + dy.mean()
        return (weight * error.abs()).mean() + self.edge_weight * edges + self.kl_weight * kl


def training_data(n: int, in_between_share: float, seed: int, progress: bool) -> ShapesData:
    """n images: scenes as the diffusion model is trained on, and a share of ideal in-betweens after them."""
    between = round(n * in_between_share)
    data = generate(n - between, seed, progress=progress)
    if between == 0:
        return data
    extra = in_between_data(between, seed + 7)
    return ShapesData(np.concatenate([data.images, extra.images]), np.concatenate([data.masks, extra.masks]),
                      data.scenes + extra.scenes, data.captions + extra.captions)  # fmt: skip


@torch.no_grad()
def evaluate(model: AutoencoderKL, val, device: torch.device) -> tuple[float, np.ndarray]:
    """Mean per-pixel error on the shape's pixels (0..255) and a grid of originals over reconstructions."""
    model.eval()
    x = to_input(val.images, device)
    recon = model.decode(model.encode(x).mode()).clamp(-1, 1)
    mask = torch.from_numpy(val.masks).to(device).bool()
    fg_error = ((recon - x).abs().mean(1)[mask] * 127.5).mean().item()
    model.train()
    pixels = ((recon + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    grid = np.concatenate([np.concatenate(list(val.images[:8]), 1), np.concatenate(list(pixels[:8]), 1)], 0)
    return fg_error, grid


@torch.no_grad()
def latent_scaling_factor(model: AutoencoderKL, images: np.ndarray, device: torch.device) -> float:
    """1 / std of posterior samples, as SD chose 0.18215: unit-variance latents for the diffusion model."""
    z = torch.cat([model.encode(to_input(images[i : i + 256], device)).sample() for i in range(0, len(images), 256)])
    return 1.0 / z.std().item()


def train(args: argparse.Namespace, config: VAEConfig = TINY_VAE) -> dict:
    d: Dist = setup(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    if args.init is not None:
        initial = load_vae(args.init)
        config = initial.config
    model = AutoencoderKL(config).to(d.device).train()
    if args.init is not None:
        model.load_state_dict(initial.state_dict())
    if args.decoder_only:  # the encoder and its moments layer fixed: the latent space stays --init's
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith(("decoder.", "post_quant_conv.")))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    history: dict[str, list] = {"train": [], "val_fg_error": []}
    start = 0
    state = load_state(args.out / "state.pt")
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start = state["history"], state["step"]
    ddp = wrap(ReconstructionLoss(model, args.fg_weight, args.kl_weight, args.edge_weight), d)
    data = training_data(args.train_size, args.in_between_share, args.seed, d.main)
    val = training_data(64, args.in_between_share, args.seed + 1, False)
    masks = torch.from_numpy(data.masks)

    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc="vae", disable=not d.main)
    for step in bar:
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)  # all of this step's randomness
        idx = torch.randperm(len(data), generator=gen)[: args.batch]
        noise = torch.randn((args.batch, config.embed_dim, 8, 8), generator=gen)  # latent side for 64x64 images
        idx, noise = d.shard(idx), d.shard(noise).to(d.device)
        x, mask = to_input(data.images[idx.numpy()], d.device), masks[idx].to(d.device).float()
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, args.steps, args.lr, max_warmup=100)
        loss = ddp(x, mask, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            history["train"].append((step, loss.item()))
            bar.set_postfix(loss=f"{loss.item():.4f}")
        last = step + 1 == args.steps
        if d.main and ((step + 1) % args.save_every == 0 or last):
            fg_error, grid = evaluate(model, val, d.device)
            history["val_fg_error"].append((step + 1, fg_error))
            save_state(args.out / "state.pt",
                       {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "history": history, "step": step + 1})  # fmt: skip
            plot_curves(history, args.out / "loss.png", "VAE: weighted L1 (train), shape-pixel error /255 (val)")
            Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(
                args.out / "reconstructions.png"
            )
    check_ranks_identical(model, d)
    if d.main:
        model.eval()
        keep = args.decoder_only  # the encoder did not move, so neither did the latents' spread
        scale = config.scaling_factor if keep else latent_scaling_factor(model, data.images[:2048], d.device)
        final = dataclasses.replace(config, scaling_factor=scale)
        save_vae(model, final, args.out / "vae.safetensors")
    cleanup(d)
    return {"history": history, "model": model}


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
