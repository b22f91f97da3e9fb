"""A fingerprint of a model's weights, for outputs that must say exactly which model made them.

It hashes the tensors (names, dtypes, shapes, bytes) rather than the file, so the same weights give the
same fingerprint whether they came from a .safetensors file, a .ckpt, or a diffusers folder. Only text
layers that run count: an SD 2.x file's unused last layer, which diffusers' folders leave out, does not.
"""

from __future__ import annotations

import hashlib

import torch

from sd.loading.checkpoint_types import Checkpoint
from sd.loading.diffusers_text_encoder import text_encoder_to_diffusers


def weights_sha256(checkpoint: Checkpoint) -> str:
    digest = hashlib.sha256()
    for part in ("text_encoder", "unet", "vae"):
        module = getattr(checkpoint, part)
        state = text_encoder_to_diffusers(module)[1] if part == "text_encoder" else module.state_dict()
        for name in sorted(state):
            tensor = state[name].detach().cpu().contiguous()
            digest.update(f"{part}.{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
