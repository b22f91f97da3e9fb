"""Short training runs: each stage lowers its loss, and 2 ranks under torchrun equal one process."""

import sys
from pathlib import Path

import pytest
import torch

from sd.train import text_to_image, vae
from tests.sd.train.torchrun import TORCHRUN, run

SMALL = ["--train-size", "256", "--batch", "8"]


VAE_ARGS = ["--steps", "60", "--save-every", "30", "--lr", "1e-3", *SMALL]


def fixed_batch_loss(model: torch.nn.Module) -> float:
    """The stage-1 loss on one fixed batch with fixed posterior noise: comparable before and after."""
    from sd.data.dataset import generate

    data = generate(16, seed=99)
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    mask = torch.from_numpy(data.masks).float()
    noise = torch.randn((16, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return vae.ReconstructionLoss(model.eval(), 10.0, 1e-6, 1.0)(x, mask, noise).item()


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vae")
    result = vae.train(vae.parse_args(["--out", str(out), *VAE_ARGS]))
    return out, result


def test_vae_training_lowers_loss_and_resumes(trained_vae):
    from vae.autoencoder import AutoencoderKL
    from vae.config import TINY_VAE

    out, result = trained_vae
    torch.manual_seed(0)  # the same initial weights train() starts from (its --seed is 0)
    before = fixed_batch_loss(AutoencoderKL(TINY_VAE))
    after = fixed_batch_loss(result["model"])
    assert after < 0.8 * before, (before, after)
    assert (out / "vae.safetensors").exists() and (out / "loss.png").exists()
    # Asking for more steps resumes from the saved step instead of starting over.
    again = vae.train(vae.parse_args(["--out", str(out), *VAE_ARGS[2:], "--steps", "65", "--save-every", "5"]))
    assert [s for s, _ in again["history"]["val_fg_error"]][-2:] == [60, 65]


def test_decoder_only_fine_tune_keeps_the_latent_space(trained_vae, tmp_path):
    """--decoder-only on in-betweens: the encoder and the scaling factor stay bit for bit, the decoder learns."""
    from sd.data.in_between import in_between_data
    from sd.train.vae_file import load_vae

    out, _ = trained_vae
    start = load_vae(out / "vae.safetensors")
    args = ["--out", str(tmp_path), "--init", str(out / "vae.safetensors"), "--decoder-only",
            "--in-between-share", "1", "--steps", "30", "--save-every", "30", "--lr", "1e-3", *SMALL]  # fmt: skip
    vae.train(vae.parse_args(args))
    tuned = load_vae(tmp_path / "vae.safetensors")
    assert tuned.config == start.config  # scaling factor included
    before, after = start.state_dict(), tuned.state_dict()
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert moved and all(name.startswith(("decoder.", "post_quant_conv.")) for name in moved)
    between = in_between_data(16, seed=5)
    x = torch.from_numpy(between.images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        errors = [(m.decode(m.encode(x).mode()) - x).abs().mean().item() for m in (start, tuned)]
    assert errors[1] < errors[0], errors  # better at what it was fine-tuned on


def test_decoder_only_needs_a_starting_autoencoder(capsys):
    with pytest.raises(SystemExit):
        vae.parse_args(["--decoder-only"])
    assert "--decoder-only needs --init" in capsys.readouterr().err


def test_text_to_image_training_lowers_loss(trained_vae, tmp_path):
    vae_out, _ = trained_vae
    args = ["--vae", str(vae_out / "vae.safetensors"), "--out", str(tmp_path), "--steps", "40", "--save-every", "20",
            "--latent-cache", str(tmp_path / "cache")]  # fmt: skip
    result = text_to_image.train(text_to_image.parse_args([*args, "--train-size", "256", "--batch", "16"]))
    losses = [loss for _, loss in result["history"]["val"]]
    assert losses[-1] < losses[0], losses
    assert (tmp_path / "loss.png").exists()


LR, STEPS = 1e-3, 3


@pytest.mark.parametrize("stage", ["vae", "text_to_image"])
def test_two_ranks_under_torchrun_equal_one_process(trained_vae, tmp_path, stage):
    vae_out, _ = trained_vae
    args = ["--steps", str(STEPS), "--save-every", str(STEPS), "--lr", str(LR), "--train-size", "64", "--batch", "8",
            "--device", "cpu"]  # fmt: skip
    if stage == "text_to_image":
        args += ["--vae", str(vae_out / "vae.safetensors"), "--no-latent-cache"]
    module = f"sd.train.{stage}"
    single = run([sys.executable, "-m", module, "--out", str(tmp_path / "one"), *args])
    double = run([*TORCHRUN, "-m", module, "--out", str(tmp_path / "two"), *args])
    assert "max weight difference across 2 ranks = 0" in double, double[-2000:]
    assert "ranks identical" not in single
    one = torch.load(tmp_path / "one" / "state.pt", weights_only=True)["model"]
    two = torch.load(tmp_path / "two" / "state.pt", weights_only=True)["model"]
    # Adam moves each element by about lr per step whatever the gradient's size, so an element whose true
    # gradient is ~0 (e.g. attention key biases, which softmax ignores) takes a full step of rounding-dependent
    # sign, and summation order differs between 1 and 2 ranks. So: no element beyond Adam's bound, and almost
    # every element equal to 1e-5. Ranks on different data, or unaveraged gradients, would move most elements.
    bound = 2 * LR * STEPS
    off = total = 0
    for key in one:
        difference = (two[key] - one[key]).abs()
        assert difference.max() <= bound, (key, difference.max().item())
        off += int((difference > 1e-5).sum())
        total += difference.numel()
    print(f"{stage}: {off} of {total} elements differ by more than 1e-5")
    assert off / total < 0.01
