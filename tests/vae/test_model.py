"""Small, fast checks of the autoencoder's shapes, loading path and posterior (tiny configs)."""

from __future__ import annotations

import math

import pytest
import torch
from einops import rearrange

from vae.attention import AttnBlock
from vae.autoencoder import AutoencoderKL
from vae.config import SD15_VAE, VAEConfig
from vae.distribution import DiagonalGaussianDistribution

TINY = VAEConfig(ch=16, ch_mult=(1, 2, 4, 4), num_res_blocks=1, norm_groups=8)  # f=8, ~1M parameters


@pytest.fixture
def tiny() -> AutoencoderKL:
    torch.manual_seed(0)
    return AutoencoderKL(TINY)


def test_forward_backward_shapes(tiny: AutoencoderKL) -> None:
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    reconstruction, posterior = tiny(x, sample_posterior=True, generator=torch.Generator().manual_seed(0))
    assert posterior.mean.shape == posterior.logvar.shape == (2, 4, 8, 8)
    assert reconstruction.shape == x.shape
    loss = (reconstruction - x).abs().mean() + 1e-6 * posterior.kl().mean()
    loss.backward()
    missing = [name for name, p in tiny.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


def test_sd15_layout() -> None:
    with torch.device("meta"):
        model = AutoencoderKL(SD15_VAE)
    assert sum(p.numel() for p in model.parameters()) == 83_653_863  # the SD 1.x VAE's size
    assert not list(model.buffers())
    assert model.decoder.up[0].block[0].conv1.out_channels == 128  # up.0 is the highest resolution
    assert not hasattr(model.decoder.up[0], "upsample") and hasattr(model.decoder.up[3], "upsample")
    assert not hasattr(model.encoder.down[3], "downsample") and hasattr(model.encoder.down[0], "downsample")
    assert model.encoder.mid.attn_1.q.weight.shape == (512, 512, 1, 1)


def test_meta_construction_and_assign_load(tiny: AutoencoderKL) -> None:
    with torch.device("meta"):
        empty = AutoencoderKL(TINY)
    empty.load_state_dict(tiny.state_dict(), strict=True, assign=True)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(empty(x)[0], tiny(x)[0])


def test_sample_is_reproducible_and_reparameterised() -> None:
    moments = torch.randn(2, 8, 4, 4)
    posterior = DiagonalGaussianDistribution(moments)
    first = posterior.sample(torch.Generator().manual_seed(5))
    assert torch.equal(first, posterior.sample(torch.Generator().manual_seed(5)))
    assert not torch.equal(first, posterior.sample(torch.Generator().manual_seed(6)))
    eps = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(5))
    mean, logvar = moments.chunk(2, dim=1)
    torch.testing.assert_close(first, mean + torch.exp(0.5 * logvar) * eps, rtol=0, atol=0)
    assert torch.equal(posterior.mode(), mean)


def test_kl_of_standard_normal_is_zero() -> None:
    assert torch.equal(DiagonalGaussianDistribution(torch.zeros(3, 8, 4, 4)).kl(), torch.zeros(3))
    # mean 1, var 1: KL = 1/2 * sum(mean^2) = 1/2 per element, 4*4*4 elements.
    mean, logvar = torch.ones(1, 4, 4, 4), torch.zeros(1, 4, 4, 4)
    shifted = DiagonalGaussianDistribution(torch.cat([mean, logvar], dim=1))
    torch.testing.assert_close(shifted.kl(), torch.tensor([32.0]))


def test_logvar_is_clamped() -> None:
    posterior = DiagonalGaussianDistribution(torch.tensor([0.0, 100.0]).view(1, 2, 1, 1))
    assert posterior.logvar.item() == 20.0 and math.isfinite(posterior.std.item())


def test_attention_is_single_head_softmax_over_positions() -> None:
    """out = x + proj_out(softmax(q k^T / sqrt(C)) v), written out by hand."""
    torch.manual_seed(0)
    block = AttnBlock(16, norm_groups=4)
    x = torch.randn(2, 16, 3, 5)
    h = block.norm(x)
    q, k, v = (rearrange(conv(h), "b c h w -> b (h w) c") for conv in (block.q, block.k, block.v))
    attended = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(16), dim=-1) @ v  # (B, HW, C)
    expected = x + block.proj_out(rearrange(attended, "b (h w) c -> b c h w", h=3, w=5))
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_config_rejects_channels_the_norm_cannot_split() -> None:
    with pytest.raises(ValueError, match="norm_groups"):
        VAEConfig(ch=20, norm_groups=8)
