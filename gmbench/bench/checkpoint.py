"""Preemption-safe jobs: a job's whole training state, saved between timed blocks and restored by --resume.

``<run>/checkpoints/<job_id>.train.pt`` holds, as tensors and plain data (so that it loads with
``torch.load(weights_only=True)``): the model's ``training_state`` (networks, optimizers, EMA, host
counters), the batch sampler's position, every global RNG (Python, NumPy, torch CPU, the job's CUDA
device), the timing blocks so far and the rows recorded during training (curve points). The runner
writes it atomically at a block boundary once ``checkpoint_every`` seconds have passed since the last
one; the session removes it once the job's record is written. A job that finds it continues from it,
and ends with the weights and scores of an uninterrupted run.
"""
from __future__ import annotations

import json
import pickle
import random
import time
from pathlib import Path

import numpy as np
import torch

from gmbench.bench.suite import Job
from gmbench.config import config_to_dict
from gmbench.data import DeviceBatches
from gmbench.errors import GmbenchError
from gmbench.io import atomic_path
from gmbench.models.base import GenerativeModel

DEFAULT_EVERY = 300.0  # seconds between training checkpoints (`gmbench run --checkpoint-every`; 0 = none)
FORMAT = 1


def training_checkpoint_path(run_dir: Path, job_id: str) -> Path:
    return Path(run_dir) / "checkpoints" / f"{job_id}.train.pt"


def discard(run_dir: Path, job_id: str) -> None:
    """Remove a job's training checkpoint (once its record is written, the job is finished)."""
    training_checkpoint_path(run_dir, job_id).unlink(missing_ok=True)


def rng_state(device: torch.device) -> dict:
    """Python's, NumPy's, torch's CPU and (on CUDA) ``device``'s RNG states as tensors and plain data."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(mt), gauss],
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],  # keys: [624] uint32
             "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what ``rng_state`` returned."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def job_signature(job: Job, model: GenerativeModel) -> str:
    """What the checkpoint must have been written for: the job, its model's config and its budget."""
    return json.dumps({"job_id": job.job_id, "model": job.model.name, "dataset": job.dataset, "seed": job.seed,
                       "config": config_to_dict(model.config), "budget": config_to_dict(job.model.budget)},
                      sort_keys=True, default=str)


class TrainingCheckpoint:
    """The training checkpoint of one job: ``due`` every ``every`` seconds (0: never), ``save``, ``load``."""

    def __init__(self, run_dir: Path, job: Job, model: GenerativeModel, device: torch.device, every: float):
        self.path = training_checkpoint_path(run_dir, job.job_id)
        self.signature = job_signature(job, model)
        self.device, self.every = device, every
        self.last = time.perf_counter()

    def due(self) -> bool:
        return self.every > 0 and time.perf_counter() - self.last >= self.every

    def save(self, model: GenerativeModel, batches: DeviceBatches, timing: dict, rows: list[dict]) -> None:
        """Write the whole training state atomically; ``timing`` and ``rows`` are the runner's plain data."""
        state = {"format": FORMAT, "job": self.signature, "model": model.training_state(),
                 "batches": batches.state_dict(), "rng": rng_state(self.device), "timing": timing, "rows": rows}
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)
        self.last = time.perf_counter()

    def load(self, model: GenerativeModel, batches: DeviceBatches) -> dict | None:
        """Restore model, sampler and RNGs from the checkpoint if there is one; returns its ``timing`` and
        ``rows`` (None without a checkpoint)."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)  # RNG states must stay on the CPU
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            raise GmbenchError(f"The training checkpoint {self.path} cannot be read ({exc}). Delete it (the job "
                               "then starts from step 0) and run again with --resume.") from None
        if state.get("format") != FORMAT or state.get("job") != self.signature:
            raise GmbenchError(f"The training checkpoint {self.path} was written for another configuration of this "
                               "job or by another gmbench. Delete it (the job then starts from step 0) and run "
                               "again with --resume.")
        model.load_training_state(state["model"])
        batches.load_state_dict(state["batches"])
        set_rng_state(state["rng"], self.device)
        self.last = time.perf_counter()
        return {"timing": state["timing"], "rows": state["rows"]}
