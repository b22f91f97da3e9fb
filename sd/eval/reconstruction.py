"""How much of each attribute survives the autoencoder: the judge reads VAE reconstructions of fresh renders.

This bounds what the diffusion model can reach: a shape the VAE cannot reconstruct, no latent can draw.

    python -m sd.eval.reconstruction --vae outputs/train/vae/vae.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sd.data.dataset import generate
from sd.eval.classifier import load_classifier, scene_attributes
from sd.train.vae_file import load_vae


@torch.no_grad()
def reconstruction_accuracy(vae_path: Path, n: int = 500, seed: int = 77) -> dict[str, dict[str, float]]:
    """Per-attribute accuracy of the judge on reconstructions, overall and for each size."""
    vae, judge = load_vae(vae_path), load_classifier()
    data = generate(n, seed)
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (N, 3, 64, 64)
    recon = torch.cat([vae.decode(vae.encode(x[i : i + 250]).mode()) for i in range(0, n, 250)]).clamp(-1, 1)
    pixels = ((recon + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()  # (N, 64, 64, 3)
    predicted = judge.predict(pixels)
    truth = [scene_attributes(s) for s in data.scenes]
    groups = {"all": range(n)} | {
        size: [i for i, s in enumerate(data.scenes) if s.size == size] for size in ("small", "large")
    }
    return {
        name: {a: float(np.mean([predicted[i][a] == truth[i][a] for i in idx])) for a in truth[0]}
        for name, idx in groups.items()
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sd.eval.reconstruction", description=__doc__)
    p.add_argument("--vae", type=Path, default=Path("outputs/train/vae/vae.safetensors"))
    p.add_argument("--n", type=int, default=500)
    args = p.parse_args(argv)
    for group, accuracy in reconstruction_accuracy(args.vae, args.n).items():
        print(f"{group:>6}: " + ", ".join(f"{a} {v:.1%}" for a, v in accuracy.items()))


if __name__ == "__main__":
    main()
