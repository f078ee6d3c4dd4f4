"""Data-parallel training of one job (``parallel = "ddp"``): 2 gloo ranks on the CPU take the steps one process
takes on the concatenated batch, and a torchrun run of such a suite gives the serial run's jobs and quality."""
import copy
import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from gmbench.bench.distributed import Ranks
from gmbench.bench.suite import Budget, Job, ModelEntry, parse_suite
from gmbench.data import DeviceBatches
from gmbench.errors import GmbenchError
from gmbench.registry import MODELS
from gmbench.report.records import load_records
from tests.conftest import requires_mnist

REPO = Path(__file__).resolve().parents[1]
STEPS, BATCH = 4, 8


def _model(name: str):
    """The tiny ``name`` with lr 1e-4. Adam scales each parameter's update by its gradient's size, so on parameters
    whose gradient is zero but for rounding (conv biases before a GroupNorm) float32 rounding differences between
    one gradient sum and two become updates of order lr; at 1e-4 they stay below 1e-5 over STEPS steps, while a
    rank training on the wrong rows or noise is off by about 1e-4."""
    cls = MODELS.get(name)
    return cls(dataclasses.replace(cls.tiny_config(), lr=1e-4))


def _train(name: str, rank: int, world: int) -> dict:
    """Train ``_model(name)`` for STEPS steps on global batches of BATCH images, as ``rank`` of ``world``."""
    torch.manual_seed(0)
    model = _model(name)
    if world > 1:
        model.data_parallel(DistributedDataParallel, rank, world)
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    batches = DeviceBatches(images, BATCH, torch.device("cpu"), seed=2, rows=(rank, world))
    for _ in range(STEPS):
        model.train_step(batches.next())
    if world > 1:  # a copy (flops counting, for one) trains alone, outside the process group
        alone = copy.deepcopy(model)
        assert alone.data_shard == (0, 1) and alone.replica(model.ddp_networks[0]) is getattr(alone, model.ddp_networks[0])
    return {k: v.clone() for k, v in model.state_dict().items()}


def _rank(rank: int, world: int, port: int, name: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(_train(name, rank, world), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["ddpm", "flow-matching", "gan-mlp"])
def test_two_ddp_ranks_take_the_steps_of_one_process_on_the_concatenated_batch(name, tmp_path):
    torch.set_num_threads(1)
    out = str(tmp_path / "state")
    mp.spawn(_rank, args=(2, _free_port(), name, out), nprocs=2)
    alone = _train(name, 0, 1)
    ranks = [torch.load(f"{out}.{r}", weights_only=True) for r in range(2)]
    torch.manual_seed(0)
    initial = _model(name).state_dict()
    for key, value in alone.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key  # DDP keeps the replicas identical
        torch.testing.assert_close(ranks[0][key], value, rtol=0, atol=1e-5, msg=key)
    assert any(not torch.allclose(initial[k], alone[k]) for k in alone)  # it trained


def test_dcgan_trains_data_parallel_with_identical_replicas(tmp_path):
    """dcgan has batch norm, which on the CPU normalises over each rank's rows (SyncBatchNorm needs CUDA), so it
    is not equal to one process; DDP still keeps both ranks' networks and buffers identical."""
    torch.set_num_threads(1)
    out = str(tmp_path / "state")
    mp.spawn(_rank, args=(2, _free_port(), "dcgan", out), nprocs=2)
    ranks = [torch.load(f"{out}.{r}", weights_only=True) for r in range(2)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0] if "running" not in k)


def test_ranks_rows_of_a_batch_make_up_the_global_batch():
    images = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    alone = DeviceBatches(images, 12, torch.device("cpu"), seed=3)
    ranks = [DeviceBatches(images, 12, torch.device("cpu"), seed=3, rows=(r, 3)) for r in range(3)]
    for _ in range(6):  # across an epoch boundary
        assert torch.equal(torch.cat([b.next() for b in ranks]), alone.next())


def test_a_batch_that_does_not_split_over_the_ranks_is_refused():
    with pytest.raises(GmbenchError, match="multiple of 3"):
        DeviceBatches(torch.zeros(50, 1, 4, 4, dtype=torch.uint8), 10, torch.device("cpu"), rows=(0, 3))
    ranks = Ranks.__new__(Ranks)  # the check alone, without joining a process group
    ranks.world_size = 4
    job = Job("s", ModelEntry("ddpm", {}, Budget(steps=1, batch_size=30), parallel="ddp"), "mnist", 0)
    with pytest.raises(GmbenchError, match="batch_size 30.*multiple of 4"):
        ranks.check([job])
    ranks.check([Job("s", ModelEntry("ddpm", {}, Budget(steps=1, batch_size=30)), "mnist", 0)])  # one rank per job


@pytest.mark.parametrize("value, message", [("ddp", "does not support data-parallel"), ("fsdp", "expected \"ddp\"")])
def test_parallel_is_refused_for_models_without_it_and_for_unknown_modes(value, message):
    with pytest.raises(GmbenchError, match=message):
        parse_suite(f'[budget]\nsteps = 1\n[models.wgan-gp]\nparallel = "{value}"\n', "t")
    assert parse_suite('[budget]\nsteps = 1\n[models.dcgan]\nparallel = "ddp"\n', "t").models[0].parallel == "ddp"


SUITE = """
[budget]
steps = 6
batch_size = 32
[metrics]
n_samples = 128
[timing]
warmup_steps = 2
block_steps = 2
sample_batch = 64
[models.ddpm]
channels = [8, 8]
num_timesteps = 20
sample_steps = 5
parallel = "ddp"
[models.dcgan]
width = 8
"""
JOBS = ["dcgan-mnist-s0", "dcgan-mnist-s1", "ddpm-mnist-s0", "ddpm-mnist-s1"]


@requires_mnist
def test_torchrun_trains_a_ddp_model_on_every_rank_and_the_rest_one_rank_each(tmp_path):
    suite = tmp_path / "ddp.toml"
    suite.write_text(SUITE)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = ["run", str(suite), "--seeds", "0,1", "--device", "cpu", "--quiet"]
    serial = subprocess.run([sys.executable, "-m", "gmbench", *args, "--out", str(tmp_path / "serial")], env=env,
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert serial.returncode == 0, serial.stderr
    ranks = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            "-m", "gmbench", *args[:-1], "--out", str(tmp_path / "ranks")], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert ranks.returncode == 0, ranks.stdout + ranks.stderr
    assert sorted(p.stem for p in (tmp_path / "ranks" / "jobs").glob("*.json")) == JOBS
    for job in ("ddpm-mnist-s0", "ddpm-mnist-s1"):  # rank 0 ran it beside rank 1, and alone wrote it
        assert ranks.stdout.count(f"{job}: running on cpu and 1 more rank(s), data-parallel") == 1
    records = {run: load_records(tmp_path / run) for run in ("serial", "ranks")}
    world = records["ranks"].groupby("model")["world_size"].unique()
    assert list(world["ddpm"]) == [2] and list(world["dcgan"]) == [1] and set(records["serial"]["world_size"]) == {1}
    fid = {run: r[r.metric == "fid"].set_index(["model", "seed"])["value"].sort_index() for run, r in records.items()}
    assert len(fid["ranks"]) == 4
    torch.testing.assert_close(torch.tensor(fid["ranks"].values), torch.tensor(fid["serial"].values), rtol=1e-5, atol=0)
    for job in JOBS:  # float32: the ranks' gradient sums round differently, which Adam scales up to ~1e-4 at most
        a, b = (torch.load(tmp_path / run / "checkpoints" / f"{job}.pt", weights_only=True) for run in ("serial", "ranks"))
        assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-3, job
    flops = {run: r[r.metric == "train_flops"].set_index(["model", "seed"])["value"].sort_index() for run, r in records.items()}
    assert flops["ranks"].equals(flops["serial"])  # per image of the global batch, counted before DDP wraps
    assert (records["ranks"]["metric"] == "train_mfu").sum() == 4
    manifest = json.loads((tmp_path / "ranks" / "manifest.json").read_text())
    assert manifest["jobs"]["ddpm-mnist-s0"]["parallel"] == "ddp" and "parallel" not in manifest["jobs"]["dcgan-mnist-s0"]


BREAKS_ON_RANK_1 = '''
import torch.distributed as dist
from gmbench.models.diffusion import DDPM
from gmbench.registry import register_model

class BreaksOnRank1(DDPM):
    def train_step(self, x):
        if dist.is_initialized() and dist.get_rank() == 1 and self.steps_done >= 2:
            raise RuntimeError("rank 1 broke at step 2")
        return super().train_step(x)

def register():
    register_model("ddpm-breaks-on-rank-1", BreaksOnRank1)
'''


@requires_mnist
def test_a_data_parallel_job_failing_on_one_rank_records_it_and_stops_the_run(tmp_path, install_plugin):
    """The other rank waits inside a collective for the failed one, so the failing rank writes the record and
    exits, and torchrun stops the rest, instead of the run hanging until the process group's timeout."""
    install_plugin("breaks_on_rank_1", BREAKS_ON_RANK_1, {"breaks": "breaks_on_rank_1:register"})
    suite = tmp_path / "breaks.toml"
    suite.write_text(SUITE.replace("[models.ddpm]", "[models.ddpm-breaks-on-rank-1]").replace("[models.dcgan]\nwidth = 8\n", ""))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "gmbench", "run", str(suite), "--device", "cpu", "--out", str(out)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode != 0
    assert "FAILED on rank 1: RuntimeError: rank 1 broke at step 2" in done.stdout, done.stdout + done.stderr
    record = json.loads((out / "jobs" / "ddpm-breaks-on-rank-1-mnist-s0.json").read_text())
    assert record["status"] == "failed" and "rank 1 broke at step 2" in record["error"]
