"""Feature extraction split over the ranks of a torch.distributed process group (`torchrun ... gmbench eval`).

Shards are batch-aligned: rank r of W extracts batches r, r+W, r+2W, ... of the serial run, each in a batch of
the serial run's shape (the tail batch padded alike), so every image's features are the serial run's bit for
bit; ``gather_batches`` puts them back in serial order on every rank. Sharding is explicit, a ``group`` passed
by `eval` and `stats`, never implied by an initialised process group: under `torchrun ... gmbench run` each rank
runs jobs of its own, whose scoring must stay on that rank.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def my_batches(n: int, batch_size: int, group: dist.ProcessGroup | None) -> range:
    """First rows of the batches this rank extracts: batches rank, rank+W, ... (every batch without a group)."""
    starts = range(0, n, batch_size)
    return starts if group is None else starts[dist.get_rank(group)::dist.get_world_size(group)]


def everywhere(flag: bool, group: dist.ProcessGroup | None) -> bool:
    """Whether ``flag`` holds on every rank of ``group`` (``flag`` itself without a group)."""
    if group is None:
        return flag
    vote = torch.tensor([int(flag)], device=_wire(group))
    dist.all_reduce(vote, dist.ReduceOp.MIN, group=group)
    return bool(vote.item())


def gather_batches(batches: list[Tensor], columns: int, n: int, batch_size: int,
                   group: dist.ProcessGroup) -> Tensor:
    """Each rank's outputs of its ``my_batches`` (each [b,columns]) -> all ``n`` rows [n,columns] in serial order,
    on every rank. Ranks send equal lengths: their batches padded to the most any rank has."""
    world = dist.get_world_size(group)
    rounds = len(range(0, n, batch_size)[::world])  # rank 0's batches, the most any rank has
    local = torch.zeros(rounds * batch_size, columns, device=_wire(group))  # [J*bs,C]
    rows = torch.cat(batches).to(local.device) if batches else local[:0]  # [n_r,C]
    local[:len(rows)] = rows
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local, group=group)
    # Rank r's j-th batch is batch j*W + r: interleave the ranks batch by batch; padding lands at rows >= n.
    every = torch.stack(parts).view(world, rounds, batch_size, columns)  # [W,J,bs,C]
    return every.transpose(0, 1).reshape(-1, columns)[:n]  # [J*W*bs,C] -> [n,C]


def _wire(group: dist.ProcessGroup) -> torch.device:
    """Where the group's collectives take their tensors: the CPU for gloo, this rank's GPU for nccl."""
    gloo = dist.get_backend(group) == "gloo"
    return torch.device("cpu") if gloo else torch.device("cuda", torch.cuda.current_device())
