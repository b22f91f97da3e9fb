"""Unpruned vs masked vs pruned (vs pruned + recovered) UNets, side by side in one process.

Tiny scale (the shipped model and its pruned files): parameters, GFLOPs per UNet call, CPU latency
medians of interleaved runs with ratios to the unpruned model, held-out denoising loss, prompt adherence.
SD 1.5 scale (random weights): parameters, GFLOPs and latency only, the plan's proportions carried over
(`sd.prune.transfer`). The masked row is torch.nn.utils.prune on the same units: zeros, same tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from sd.bench.flops import meta_cost
from sd.bench.timing import interleaved_medians
from sd.loading.checkpoint_types import Checkpoint
from sd.prune.masking import nonzero_params, torch_masked
from sd.prune.surgery import param_count, prune_unet
from unet.config import UNetConfig
from unet.pruned import PrunePlan, build_pruned_unet


@dataclass
class Row:
    name: str
    params: int
    nonzero: int
    gflops: float
    seconds: dict[str, float]  # median seconds per call, by workload
    loss: float | None = None
    adherence: tuple[float, float] | None = None  # all five attributes right: held-in, held-out
    note: str = ""


def meta_gflops(config: UNetConfig, plan: PrunePlan | None, batch: int, size: int) -> float:
    """GFLOPs of one call of a weightless (meta) copy with `plan`'s shapes (sd/bench/flops.py says why meta).
    A masked model counts as the dense one (plan None): its masks only add elementwise multiplies."""
    return meta_cost(lambda: build_pruned_unet(config, plan), batch, size)[1] / 1e9


def unet_calls(models: dict[str, nn.Module], batch: int, size: int, repeats: int) -> dict[str, float]:
    config = next(iter(models.values())).config
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, config.in_channels, size, size, generator=gen)
    context = torch.randn(batch, 77, config.context_dim, generator=gen)
    t = 500.0  # one timestep for the whole batch, as the samplers call the UNet
    with torch.no_grad():
        return interleaved_medians({n: (lambda m=m: m(x, t, context)) for n, m in models.items()}, repeats)


def tiny_rows(checkpoint: Checkpoint, pruned: nn.Module, recovered: nn.Module | None, samples: int,
              repeats: int) -> list[Row]:  # fmt: skip
    from sd.eval.adherence import evaluate_adherence
    from sd.eval.held_out import HELD_OUT_SEED, denoising_loss, held_out_batch
    from sd.pipeline import StableDiffusionPipeline

    plan: PrunePlan = pruned.prune_plan
    models = {"unpruned": checkpoint.unet, "masked (torch.nn.utils.prune)": torch_masked(checkpoint.unet, plan),
              "pruned": pruned}  # fmt: skip
    if recovered is not None:
        models["pruned + recovered"] = recovered
    size = checkpoint.vae.config.resolution // checkpoint.vae.config.downsample_factor
    seconds = {n: {} for n in models}
    for batch in (2, 64):
        for n, s in unet_calls(models, batch, size, repeats * 10 if batch == 2 else repeats).items():
            seconds[n][f"UNet batch {batch}"] = s
    pipes = {n: StableDiffusionPipeline(replace(checkpoint, unet=m)) for n, m in models.items()}
    e2e = interleaved_medians({n: (lambda p=p: p.txt2img("a red circle", seed=0, steps=25, sampler="dpmpp_2m",
                                                          guidance=5.0, progress=False)) for n, p in pipes.items()},
                              repeats)  # fmt: skip
    batch = held_out_batch(checkpoint, 256, HELD_OUT_SEED + 1)
    rows = []
    for n, m in models.items():
        seconds[n]["txt2img 25 steps"] = e2e[n]
        note = "masks only: every tensor full size" if n.startswith("masked") else ""
        if n.startswith("masked"):  # the same function as "pruned" (tests: outputs equal to 1e-5): not re-sampled
            scores = None
        else:  # 2 images (seeds) per prompt; held-out colour-shape pairs get half as many
            scores = tuple(evaluate_adherence(pipes[n], count, 0, held_out, batch=2, progress=False)["all_correct"]
                           for count, held_out in ((samples, False), (samples // 2, True)))  # fmt: skip
        flops = meta_gflops(m.config, getattr(m, "prune_plan", None), 2, size)
        rows.append(Row(n, param_count(m), nonzero_params(m), flops, seconds[n],
                        denoising_loss(m, batch), scores, note))  # fmt: skip
    return rows


def sd_rows(fractions: dict[str, float], target: float, repeats: int) -> list[Row]:
    """SD 1.5-size UNet, random weights: unpruned vs pruned, then unpruned vs masked (pairs keep memory down)."""
    from sd.bench.random_checkpoint import random_weights
    from sd.prune.transfer import transferred_plan
    from unet.config import SD15_UNET
    from unet.model import UNetModel

    unet = random_weights(lambda: UNetModel(SD15_UNET), 0)
    plan = transferred_plan(unet, fractions, target)
    flops = {"unpruned": meta_gflops(SD15_UNET, None, 2, 64), "pruned": meta_gflops(SD15_UNET, plan, 2, 64)}
    rows = {"unpruned": Row("unpruned", param_count(unet), param_count(unet), flops["unpruned"], {})}
    pruned = prune_unet(unet, plan)
    rows["pruned"] = Row("pruned", param_count(pruned), param_count(pruned), flops["pruned"], {})
    pair = unet_calls({"unpruned": unet, "pruned": pruned}, 2, 64, repeats)
    del pruned
    masked = torch_masked(unet, plan)
    rows["masked"] = Row("masked (torch.nn.utils.prune)", param_count(masked), nonzero_params(masked),
                         flops["unpruned"], {}, note="masks only: every tensor full size")  # fmt: skip
    pair2 = unet_calls({"unpruned": unet, "masked": masked}, 2, 64, repeats)
    rows["unpruned"].seconds = {"UNet batch 2 (vs pruned)": pair["unpruned"],
                                "UNet batch 2 (vs masked)": pair2["unpruned"]}  # fmt: skip
    rows["pruned"].seconds = {"UNet batch 2 (vs pruned)": pair["pruned"]}
    rows["masked"].seconds = {"UNet batch 2 (vs masked)": pair2["masked"]}
    rows["unpruned"].note = plan.summary()
    return [rows["unpruned"], rows["masked"], rows["pruned"]]


def markdown(rows: list[Row]) -> str:
    """One table; latency ratios are to the unpruned row's time on the same workload (< 1: faster)."""
    workloads = list(dict.fromkeys(w for r in rows for w in r.seconds))
    base = rows[0]
    head = ["variant", "params", "nonzero params", "GFLOPs/call"] + [f"{w} s (ratio)" for w in workloads]
    if rows[0].loss is not None:
        head += ["held-out loss", "adherence held-in / held-out"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r.name + (f" ({r.note})" if r.note else ""), f"{r.params / 1e6:.3f}M", f"{r.nonzero / 1e6:.3f}M",
                 f"{r.gflops:.3f}"]  # fmt: skip
        for w in workloads:
            if w in r.seconds and w in base.seconds:
                cells.append(f"{r.seconds[w]:.4g} ({r.seconds[w] / base.seconds[w]:.2f}x)")
            else:
                cells.append("")
        if r.loss is not None:
            shown = "= pruned (same outputs)" if r.adherence is None else f"{r.adherence[0]:.1%} / {r.adherence[1]:.1%}"
            cells += [f"{r.loss:.5f}", shown]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
