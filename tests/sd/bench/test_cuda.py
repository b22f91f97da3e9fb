"""`python -m sd bench cuda` runs only on a GPU; here its code path runs on the CPU with the shipped model, so a
GPU session does not spend its minutes on a Python error. The figures it reports are checked for what the CPU
can show: same device, same bits; ours against diffusers within fp16 rounding; offloading changes nothing."""

import pytest
import torch

from sd.bench.cuda import bench_cuda
from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.paths import DEFAULT_CHECKPOINT


def test_bench_cuda_code_path_on_the_cpu():
    r = bench_cuda(load_checkpoint(DEFAULT_CHECKPOINT), "cpu", steps=2, size=64, repeats=1)
    assert r["errors"]["unet fp32: device vs cpu"] == 0.0  # the same device: the same bits
    assert r["errors"]["unet float16: ours vs diffusers"] <= 1e-2
    assert 0 < r["errors"]["unet float16: ours vs fp32 cpu"] <= 1e-2  # fp16 really ran
    assert r["pixels"]["fp16 --offload vs not"] == 0 and r["pixels"]["bf16 --offload vs not"] == 0
    assert r["pixels"]["fp16 ours vs diffusers"] <= 3
    assert set(r["seconds"]) == {"fp16 txt2img 64px, ddim 2 steps, CFG", "fp16 UNet call, batch 2, 8x8 latents",
                                 "bf16 txt2img 64px, ddim 2 steps, CFG", "bf16 UNet call, batch 2, 8x8 latents"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_bench_cuda_without_a_gpu_is_a_user_error():
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        bench_cuda(load_checkpoint(DEFAULT_CHECKPOINT), "cuda")
