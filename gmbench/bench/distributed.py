"""Who runs which jobs of a suite: one process (``Solo``), the ranks of a torchrun run (``Ranks``), or one
shard of a job array (``Shard``, ``--shard K/N``).

Ranks: torchrun sets WORLD_SIZE, RANK and LOCAL_RANK. Each rank joins the process group (gloo on CPU, nccl
on CUDA) and runs on ``cuda:LOCAL_RANK`` where there are GPUs (with --device auto or cuda), else on the CPU.
Jobs are handed out dynamically: a rank claims the next job index with the store's atomic counter
(``store.add``). Before any job starts, every rank checks its device and files and rank 0 opens the run
folder (lock, manifest); a user error anywhere stops every rank (exit 2) within ``AGREE_TIMEOUT`` instead of
leaving them waiting. Rank 0 writes the manifest and rebuilds records.csv; every rank writes its own
``jobs/<id>.json``. At the end each rank waits for all of them, then reads every job's status from the run
folder (on a filesystem all nodes share), so all exit 1 when any job failed.

Shards: shard K of N takes the jobs at positions K-1, K-1+N, ... of the suite's job order. Shards are
separate processes (a Slurm job array, Kubernetes indexed jobs) that share the run folder: each holds its
own lock, the first one writes the manifest and each adds itself to its ``shards`` table.
"""
from __future__ import annotations

import json
import os
import re
import socket
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator, TypeVar

import torch
import torch.distributed as dist

from gmbench.bench.run_lock import RunLock
from gmbench.bench.suite import Job
from gmbench.device import resolve_device
from gmbench.errors import GmbenchError
from gmbench.ranks import rank_device, under_torchrun

T = TypeVar("T")
AGREE_TIMEOUT = timedelta(minutes=10)  # how long a rank waits for the others' checks before any job
FINISH_TIMEOUT = timedelta(days=30)  # how long a rank waits for the others' last jobs
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class Solo:
    """A plain run: this process runs every job, writes the manifest and records.csv."""

    shard: tuple[int, int] | None = None
    leader = True  # writes the manifest and records.csv

    def device(self, spec: str) -> torch.device:
        return resolve_device(spec)

    def agree(self, step: str, work: Callable[[], T], leader_only: bool = False) -> list[T]:
        """``work()`` of every process taking part (of the leader only); an error in any stops all of them."""
        return [work()]

    def lock(self, run_dir, token: str | None = None) -> RunLock:
        return RunLock(run_dir, token=token)

    def owns(self, index: int) -> bool:
        return True

    def check(self, jobs: list[Job]) -> None:
        """Refuse jobs this process cannot run as the suite asks (before any job starts)."""

    def together(self, jobs: list[Job]) -> list[tuple[int, Job]]:
        """The jobs every process runs together, data-parallel (``parallel = "ddp"`` under torchrun), with their
        positions in the suite; they run before the ``claim``-ed ones. Elsewhere such jobs run on one process."""
        return []

    def mine(self, jobs: list[Job]) -> list[Job]:
        """The jobs whose status this process reports (and exits 1 for when one failed)."""
        return [job for i, job in enumerate(jobs) if self.owns(i)]

    def claim(self, jobs: list[Job]) -> Iterator[tuple[int, Job]]:
        """The jobs this process runs, with their positions in the suite."""
        return ((i, job) for i, job in enumerate(jobs) if self.owns(i))

    def may_join(self, manifest: dict) -> bool:
        """Whether an existing run without --resume is one this process takes part in (a sibling shard's)."""
        return False

    def manifest_entry(self, manifest: dict, members: list[dict]) -> dict:
        """What this process adds to the manifest as the run starts; ``members``: each process's host and device."""
        return {}

    def finish_entry(self, manifest: dict, complete: bool) -> dict:
        """What changes in the manifest as this process ends; ``complete``: every job of the run has a record."""
        return {"finished": _now()}

    def wait_for_all(self) -> None:
        """Return once every process of the run has run its last job."""

    def close(self) -> None:
        """Leave the process group, if any."""


class Shard(Solo):
    """Shard ``index`` of ``count``: every count-th job of the suite, beside its sibling shards in one folder."""

    def __init__(self, index: int, count: int):
        self.shard = (index, count)

    def lock(self, run_dir, token: str | None = None) -> RunLock:
        return RunLock(run_dir, shard=self.shard)

    def owns(self, index: int) -> bool:
        return index % self.shard[1] == self.shard[0] - 1

    def may_join(self, manifest: dict) -> bool:
        shards = manifest.get("shards", {})
        return shards.get("count") == self.shard[1] and str(self.shard[0]) not in shards.get("members", {})

    def manifest_entry(self, manifest: dict, members: list[dict]) -> dict:
        shards = manifest.get("shards", {})
        siblings = shards.get("members", {}) if shards.get("count") == self.shard[1] else {}  # not another N's
        member = {**members[0], "pid": os.getpid(), "started": _now(), "finished": None}
        return {"shards": {"count": self.shard[1], "members": {**siblings, str(self.shard[0]): member}},
                "finished": None}

    def finish_entry(self, manifest: dict, complete: bool) -> dict:
        members = dict(manifest["shards"]["members"])
        members[str(self.shard[0])] = {**members[str(self.shard[0])], "finished": _now()}
        return {"shards": {**manifest["shards"], "members": members}, "finished": _now() if complete else None}


class Ranks(Solo):
    """This process as one rank of a torchrun run: it joins the process group on creation."""

    def __init__(self, device_spec: str):
        self.rank, self.world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ["LOCAL_RANK"])
        self.leader = self.rank == 0
        self.backend = "nccl" if device_spec != "cpu" and torch.cuda.is_available() else "gloo"
        dist.init_process_group(self.backend)
        self.store = dist.distributed_c10d._get_default_store()  # the rendezvous store every rank shares

    def device(self, spec: str) -> torch.device:
        return rank_device(spec)  # after joining the group, so that its errors reach every rank through agree()

    def agree(self, step: str, work: Callable[[], T], leader_only: bool = False) -> list[T]:
        ranks = [0] if leader_only else list(range(self.world_size))
        if self.rank in ranks:
            try:
                entry = {"value": work()}
            except GmbenchError as exc:
                entry = {"error": str(exc)}
            self.store.set(f"gmbench/{step}/{self.rank}", json.dumps(entry))
        keys = [f"gmbench/{step}/{r}" for r in ranks]
        try:
            self.store.wait(keys, AGREE_TIMEOUT)
        except RuntimeError:  # torch's DistStoreError (a timeout) is one
            raise GmbenchError(f"Rank {self.rank}: another rank of this torchrun run did not get ready within "
                               f"{AGREE_TIMEOUT} (it failed or hangs; its own output says why), so no job was "
                               "started here. Fix that and run again, with --resume where the run folder exists."
                               ) from None
        entries = [json.loads(self.store.get(key)) for key in keys]
        for rank, entry in zip(ranks, entries):
            if "error" in entry:
                raise GmbenchError(entry["error"] if rank == self.rank else
                                   f"Rank {rank} stopped the run before its jobs started: {entry['error']}")
        return [entry["value"] for entry in entries]

    def check(self, jobs: list[Job]) -> None:
        uneven = sorted({f"{job.model.name} (batch_size {job.model.budget.batch_size})" for _, job in self.together(jobs)
                         if job.model.budget.batch_size % self.world_size})
        if uneven:
            raise GmbenchError(f"parallel = \"ddp\" splits each batch over the {self.world_size} ranks, but the batch "
                               f"of {', '.join(uneven)} does not split evenly; make batch_size a multiple of "
                               f"{self.world_size}, or start another number of ranks.")

    def together(self, jobs: list[Job]) -> list[tuple[int, Job]]:
        return [(i, job) for i, job in enumerate(jobs) if job.model.parallel == "ddp"]

    def claim(self, jobs: list[Job]) -> Iterator[tuple[int, Job]]:
        queue = [(i, job) for i, job in enumerate(jobs) if job.model.parallel != "ddp"]  # one rank each
        while (index := self.store.add("gmbench/next_job", 1) - 1) < len(queue):
            yield queue[index]

    def manifest_entry(self, manifest: dict, members: list[dict]) -> dict:
        ranks = [{"rank": rank, **member} for rank, member in enumerate(members)]
        return {"distributed": {"world_size": self.world_size, "backend": self.backend, "ranks": ranks,
                                "hosts": sorted({m["host"] for m in members})}}

    def wait_for_all(self) -> None:
        self.store.set(f"gmbench/finished/{self.rank}", "1")
        self.store.wait([f"gmbench/finished/{r}" for r in range(self.world_size)], FINISH_TIMEOUT)

    def close(self) -> None:
        dist.destroy_process_group()


def team(shard: str | None, device_spec: str) -> Solo:
    """The processes of this run: a torchrun rank, a --shard, or a plain run."""
    launched = under_torchrun()
    if shard is not None and launched:
        raise GmbenchError(f"--shard {shard} under torchrun: torchrun's ranks already share the suite's jobs between "
                           "them; give either torchrun or --shard, not both.")
    if shard is not None:
        return Shard(*parse_shard(shard))
    return Ranks(device_spec) if launched else Solo()


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N) with 1 <= K <= N."""
    m = _SHARD.match(text)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise GmbenchError(f"--shard {text!r}: expected K/N, shard K of N with 1 <= K <= N, e.g. --shard 1/4 for the "
                           "first of 4 shards (in a Slurm array: --shard $((SLURM_ARRAY_TASK_ID+1))/"
                           "$SLURM_ARRAY_TASK_COUNT).")
    return int(m[1]), int(m[2])


def here(device: torch.device) -> dict:
    """This process's host and device, as the manifest lists the members of a run."""
    return {"host": socket.gethostname(), "device": str(device)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
