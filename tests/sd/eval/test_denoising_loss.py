"""Swapping a trained UNet's attention (the ReLU conversion) keeps every weight and changes only the attention."""

from __future__ import annotations

import torch

from sd.eval.denoising_loss import with_attention
from unet.config import TINY_UNET
from unet.model import UNetModel


def test_with_attention_keeps_weights_and_switches_the_kernel():
    torch.manual_seed(0)
    unet = UNetModel(TINY_UNET).eval()
    relu = with_attention(unet, "relu")
    assert relu.config.attention == "relu" and unet.config.attention == "softmax"
    theirs = relu.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in unet.state_dict().items())
    x, context = torch.randn(2, 4, 8, 8), torch.randn(2, 77, 64)
    with torch.no_grad():
        assert not torch.allclose(unet(x, 10, context), relu(x, 10, context), atol=1e-3)
        assert torch.equal(with_attention(relu, "softmax")(x, 10, context), unet(x, 10, context))
    assert with_attention(unet, "softmax") is unet


def test_cli_reports_the_held_out_yardstick_with_either_attention(capsys):
    import json

    from sd.eval.denoising_loss import main
    from sd.eval.held_out import denoising_loss, held_out_batch
    from sd.loading.checkpoint import load_checkpoint
    from sd.paths import DEFAULT_CHECKPOINT

    main([str(DEFAULT_CHECKPOINT), "--samples", "16"])
    main([str(DEFAULT_CHECKPOINT), "--samples", "16", "--attention", "relu"])
    softmax, relu = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    ckpt = load_checkpoint(DEFAULT_CHECKPOINT, dtype="fp32")
    assert softmax["attention"] == "softmax" and relu["attention"] == "relu"
    assert softmax["loss"] == round(denoising_loss(ckpt.unet, held_out_batch(ckpt, 16)), 5)
    assert relu["loss"] > 2 * softmax["loss"]  # swapping the kernel without training costs (0.021 -> 0.133 at n=256)
