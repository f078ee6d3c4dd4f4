"""How the processes of a run share one job: it trains ``Alone``, or ``DataParallel`` across every rank of a
torchrun run (a suite model with ``parallel = "ddp"``).

Data-parallel: every rank builds the same model from the job's seed, draws the same global batch indices
and training randomness, and keeps its batch/world rows of them (``DeviceBatches(rows=...)``,
``GenerativeModel.rows``); the model's networks run wrapped in DistributedDataParallel, which averages the
gradients over the ranks in backward, so the ranks take exactly the steps one process takes on the global
batch (batch norm aside: it becomes SyncBatchNorm on CUDA; on the CPU each rank normalises over its own
rows, as SyncBatchNorm needs GPUs). Rank 0 leads: its clock decides a time budget, and it times, writes
training checkpoints and curve points, samples, saves and writes the job's record. All ranks score: rank 0's
samples are broadcast and the feature extraction is split over the ranks (``evaluate(group=...)``).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from gmbench.models.base import GenerativeModel


class Alone:
    """One process trains, samples and scores the job."""

    rank, world, leads = 0, 1, True
    group: dist.ProcessGroup | None = None

    def prepare(self, model: GenerativeModel) -> None:
        """Set ``model`` up to train in this team."""

    def decide(self, out_of_time: bool, finite: bool) -> tuple[bool, bool]:
        """After a block: (stop for the time budget, losses finite), as the whole team sees it."""
        return out_of_time, finite

    def share(self, samples: Tensor | None, shape: tuple[int, ...]) -> Tensor:
        """The leader's uint8 samples ``shape`` [n,C,H,W] on every rank (the others pass None)."""
        return samples

    def first_to_fail(self, job_id: str) -> bool:
        """Whether this rank is the first of the team to fail job ``job_id`` (it then writes the record: the
        others fail after it, from the broken connection)."""
        return True


class DataParallel(Alone):
    """This process as one rank of a data-parallel job over the default process group (all of torchrun's ranks)."""

    def __init__(self, device: torch.device):
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.leads = self.rank == 0
        self.group = dist.group.WORLD
        self.device = device  # collectives run here: CUDA tensors for nccl, CPU ones for gloo

    def prepare(self, model: GenerativeModel) -> None:
        cuda = self.device.type == "cuda"

        def wrap(net: nn.Module) -> DistributedDataParallel:
            if cuda:  # in place: the model keeps its networks, parameters and optimizers
                net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
            return DistributedDataParallel(net, device_ids=[self.device] if cuda else None)

        model.data_parallel(wrap, self.rank, self.world)

    def decide(self, out_of_time: bool, finite: bool) -> tuple[bool, bool]:
        flags = torch.tensor([float(out_of_time and self.leads), float(not finite)], device=self.device)  # [2]
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return bool(flags[0]), not bool(flags[1])

    def first_to_fail(self, job_id: str) -> bool:
        try:  # torchrun's store, which outlives a rank that exits
            return dist.distributed_c10d._get_default_store().add(f"gmbench/failed/{job_id}", 1) == 1
        except RuntimeError:  # the store is gone too: write what this rank knows
            return True

    def share(self, samples: Tensor | None, shape: tuple[int, ...]) -> Tensor:
        buffer = samples.to(self.device) if self.leads else torch.empty(shape, dtype=torch.uint8, device=self.device)
        dist.broadcast(buffer, src=0)
        return buffer.cpu()  # [n,C,H,W] uint8
