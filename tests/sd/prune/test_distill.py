"""A short recovery run lowers the distillation loss, and resumes where it stopped."""

from types import SimpleNamespace

import torch

from sd.data.dataset import generate
from sd.prune.distill import BlockOutputs, RecoverySettings, distill_losses, recover, total_loss
from sd.prune.surgery import prune_unet
from sd.train.text_to_image import batch_for_step, encode_latents
from tests.sd.prune.conftest import EVERY_KIND

SETTINGS = RecoverySettings(steps=12, batch=8, lr=1e-3, train_size=32, save_every=6)


def fixed_distill_loss(checkpoint, student) -> float:
    """The distillation loss of `student` on one fixed batch of the training data."""
    data = generate(SETTINGS.train_size, SETTINGS.seed)
    mean, std = encode_latents(checkpoint.vae, data.images, torch.device("cpu"))
    args = SimpleNamespace(seed=SETTINGS.seed, batch=16, uncond_prob=0.1)
    empty, captions = checkpoint.tokenizer([""]), checkpoint.tokenizer(data.captions)
    scale = checkpoint.vae.config.scaling_factor
    ids, z0, t, noise = batch_for_step(args, 10_000, len(data), empty, captions, mean, std, scale)
    z_t = checkpoint.schedule.add_noise(z0, noise, t).float()
    s_feats, t_feats = BlockOutputs(student), BlockOutputs(checkpoint.unet)
    with torch.no_grad():
        parts = distill_losses(student, checkpoint.unet, z_t, t, checkpoint.text_encoder(ids), noise, s_feats, t_feats)
    for h in s_feats.handles + t_feats.handles:
        h.remove()
    return total_loss(parts, SETTINGS).item()


def test_recovery_lowers_the_distillation_loss_and_resumes(checkpoint, tmp_path):
    before = fixed_distill_loss(checkpoint, prune_unet(checkpoint.unet, EVERY_KIND))
    half = recover(checkpoint, EVERY_KIND, tmp_path, RecoverySettings(**{**SETTINGS.__dict__, "steps": 6}),
                   progress=False)  # fmt: skip
    assert torch.load(tmp_path / "state.pt", weights_only=True)["step"] == 6
    recovered = recover(checkpoint, EVERY_KIND, tmp_path, SETTINGS, progress=False)  # resumes at step 6
    after = fixed_distill_loss(checkpoint, recovered.unet)
    assert after < 0.8 * before, (before, after)
    assert (tmp_path / "recovery.png").stat().st_size > 1000
    assert half.unet.prune_plan == recovered.unet.prune_plan == EVERY_KIND.normalized()
