"""Run the same training script alone or under `torchrun --nproc_per_node N`, unchanged.

torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; then we join a process group (gloo on CPU, nccl on GPU)
and wrap the model in DistributedDataParallel, which averages gradients across ranks. Each rank takes
its slice of the same global batch, so N ranks compute exactly what one process does with the full batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: torch.Tensor | list) -> torch.Tensor | list:
        """This rank's slice of a global batch: items rank, rank + world, ..."""
        return items[self.rank :: self.world]


def setup(device: str | None = None) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if cuda:
        torch.cuda.set_device(local)
    return Dist(rank, world, torch.device(f"cuda:{local}" if cuda else "cpu"))


def wrap(model: nn.Module, d: Dist) -> nn.Module:
    if d.world == 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)


@torch.no_grad()
def check_ranks_identical(model: nn.Module, d: Dist) -> float:
    """Max |difference| between this rank's weights and rank 0's (0.0 when alone); raises if they drifted."""
    if d.world == 1:
        return 0.0
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    difference = torch.tensor((flat - reference).abs().max().item(), device=flat.device)
    dist.all_reduce(difference, op=dist.ReduceOp.MAX)
    if d.main:
        print(f"ranks identical: max weight difference across {d.world} ranks = {difference.item():.3g}")
    if difference.item() > 0:
        raise RuntimeError(f"ranks' weights differ by {difference.item():.3g}: DDP lost synchronisation")
    return difference.item()


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def cleanup(d: Dist) -> None:
    """Leave the group together: a rank that tears gloo down while a peer still talks to it can abort at exit."""
    if d.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
