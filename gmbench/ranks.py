"""This process under torchrun: how many ranks were launched, this rank's device, and the default process group.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK. A rank runs on ``cuda:LOCAL_RANK`` where there are GPUs (with
--device auto or cuda), else on the CPU, and joins the group with nccl on CUDA, gloo on the CPU.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist

from gmbench.device import resolve_device
from gmbench.errors import GmbenchError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def under_torchrun() -> bool:
    """Whether torchrun started this process (it sets RANK, WORLD_SIZE and LOCAL_RANK)."""
    return all(v in os.environ for v in TORCHRUN_VARIABLES)


def launched_world() -> int:
    """How many processes torchrun launched, this one among them (WORLD_SIZE); 1 without torchrun."""
    return int(os.environ["WORLD_SIZE"]) if under_torchrun() else 1


def rank_device(spec: str) -> torch.device:
    """This torchrun rank's device: ``cuda:LOCAL_RANK`` for ``auto`` or ``cuda`` where there are GPUs, else ``spec``."""
    if spec not in ("auto", "cuda") or not torch.cuda.is_available():
        device = resolve_device(spec)
        if device.type == "cuda":
            raise GmbenchError(f"--device {spec} under torchrun would put every rank on one GPU; give --device cuda "
                               "(or auto), and each rank runs on cuda:LOCAL_RANK.")
        return device
    local_rank = int(os.environ["LOCAL_RANK"])
    if local_rank >= torch.cuda.device_count():
        raise GmbenchError(f"Local rank {local_rank} has no GPU of its own: this node has {torch.cuda.device_count()} "
                           "CUDA device(s); start at most that many processes per node (torchrun --nproc_per_node), "
                           "or give --device cpu.")
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    return device


def init_from_env(spec: str) -> torch.device:
    """Join torchrun's default process group (nccl on CUDA, gloo on the CPU); this rank's device."""
    device = rank_device(spec)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


@contextmanager
def world_group(spec: str) -> Iterator[tuple[torch.device, dist.ProcessGroup | None]]:
    """(device, group) of a command that shards its extraction: under torchrun with more than one process this
    rank's device and the default group, left again at the end; otherwise ``resolve_device(spec)`` and None."""
    if launched_world() == 1:
        yield resolve_device(spec), None
        return
    device = init_from_env(spec)
    try:
        yield device, dist.group.WORLD
    finally:
        dist.destroy_process_group()


def leads(group: dist.ProcessGroup | None) -> bool:
    """Whether this process prints and writes files for the group: rank 0, or the only process."""
    return group is None or dist.get_rank(group) == 0
