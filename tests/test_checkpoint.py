"""Training checkpoints (bench/checkpoint.py): what they restore, through torch.load(weights_only=True),
and what they refuse. The end-to-end SIGKILL/--resume check is in test_run.py."""
import random

import numpy as np
import pytest
import torch

from gmbench.bench.checkpoint import TrainingCheckpoint, rng_state, set_rng_state
from gmbench.bench.suite import Budget, Job, ModelEntry
from gmbench.data import DeviceBatches
from gmbench.errors import GmbenchError
from gmbench.registry import MODELS

CPU = torch.device("cpu")


def _draws(batches: DeviceBatches) -> list:
    """What the RNGs and the sampler give next: 3 batches cross an epoch of 10 images in batches of 4."""
    return [random.random(), float(np.random.rand()), torch.rand(2), *(batches.next_indices() for _ in range(3))]


def _job(steps: int) -> Job:
    return Job("t", ModelEntry("gan-mlp", {}, Budget(steps=steps, batch_size=4)), "mnist", 0)


def test_rngs_and_sampler_position_restore_through_weights_only_load(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    batches = DeviceBatches(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), 4, CPU, seed=3)  # [10,1,2,2]
    batches.next_indices()
    torch.save({"rng": rng_state(CPU), "batches": batches.state_dict()}, tmp_path / "s.pt")
    expected = _draws(batches)
    state = torch.load(tmp_path / "s.pt", weights_only=True)
    fresh = DeviceBatches(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), 4, CPU, seed=99)
    set_rng_state(state["rng"], CPU)
    fresh.load_state_dict(state["batches"])
    got = _draws(fresh)
    assert got[:2] == expected[:2]
    assert all(torch.equal(a, b) for a, b in zip(got[2:], expected[2:]))


def _checkpoint(tmp_path, job: Job):
    model = MODELS.get("gan-mlp")(MODELS.get("gan-mlp").tiny_config())
    batches = DeviceBatches(torch.zeros(8, 1, 28, 28, dtype=torch.uint8), 4, CPU)  # [8,1,28,28]
    return TrainingCheckpoint(tmp_path, job, model, CPU, every=0.0), model, batches


def test_checkpoint_of_another_configuration_or_unreadable_is_refused(tmp_path):
    saver, model, batches = _checkpoint(tmp_path, _job(steps=4))
    saver.save(model, batches, timing={"steps": 2}, rows=[])
    assert saver.load(model, batches) == {"timing": {"steps": 2}, "rows": []}
    other, model2, batches2 = _checkpoint(tmp_path, _job(steps=5))  # another budget
    with pytest.raises(GmbenchError, match="another configuration of this job"):
        other.load(model2, batches2)
    saver.path.write_bytes(b"not a checkpoint")
    with pytest.raises(GmbenchError, match="cannot be read"):
        saver.load(model, batches)
