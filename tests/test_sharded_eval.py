"""Sharded evaluation: 2 gloo ranks on the CPU extract the serial run's features bit for bit, and
`torchrun -m gmbench eval | stats` prints and caches what one process does."""
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gmbench.cli import main
from gmbench.data import load_dataset
from gmbench.metrics import build_extractor
from gmbench.metrics.features import extract
from gmbench.metrics.stats_cache import reference_stats
from tests.conftest import requires_mnist

REPO = Path(__file__).resolve().parents[1]
# 1,234 images in batches of 100: 13 batches, 7 on rank 0 (the last one partial) and 6 on rank 1;
# 50 images: one unpadded batch, and rank 1 has none.
SIZES, BATCH = (1234, 50), 100
pytestmark = requires_mnist


def _on_rank(rank: int, work, store: str, out: str) -> None:
    """Rank ``rank`` of 2 (gloo, one thread): saves ``work(rank)``, run inside the process group, to OUT.rank.
    A collective that one rank skips fails after a minute instead of hanging the tests."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=60))
    try:
        torch.save(work(rank), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _on_two_ranks(work, tmp_path: Path) -> list:
    """What ``work(rank)`` (a module-level function) returned on each of 2 spawned ranks."""
    mp.spawn(_on_rank, args=(work, str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2)
    return [torch.load(tmp_path / f"out.{rank}", weights_only=True) for rank in range(2)]


def _extract_sharded(rank: int) -> list:
    images = load_dataset("mnist", "train")[0]
    return [extract(build_extractor("mnist-lenet"), images[:n], BATCH, group=dist.group.WORLD) for n in SIZES]


def test_sharded_extraction_equals_serial_extraction(tmp_path):
    net = build_extractor("mnist-lenet")
    images = load_dataset("mnist", "train")[0]
    for rank, results in enumerate(_on_two_ranks(_extract_sharded, tmp_path)):
        for n, (features, logits) in zip(SIZES, results):
            serial_features, serial_logits = extract(net, images[:n], BATCH)  # [n,128], [n,10]
            assert torch.equal(features, serial_features) and torch.equal(logits, serial_logits), (rank, n)


def _stats_where_only_rank_0_has_a_cache(rank: int) -> dict:
    os.environ["GMBENCH_CACHE"] = os.path.join(os.environ["GMBENCH_CACHE"], str(rank))  # a cache of its own
    net = build_extractor("mnist-lenet")
    if rank == 0:
        reference_stats(net, "mnist", "test", 300, batch_size=BATCH)
    stats, _, reused = reference_stats(net, "mnist", "test", 300, batch_size=BATCH, group=dist.group.WORLD)
    return {"reused": reused, "mu": stats.mu, "sigma": stats.sigma}


def test_a_cache_that_only_some_ranks_can_read_is_rebuilt_by_all(tmp_path):
    # Were it reused on rank 0 alone, rank 1 would wait in the extraction's all_gather for good.
    serial = reference_stats(build_extractor("mnist-lenet"), "mnist", "test", 300, batch_size=BATCH)[0]
    for result in _on_two_ranks(_stats_where_only_rank_0_has_a_cache, tmp_path):
        assert not result["reused"]
        assert torch.equal(result["mu"], serial.mu) and torch.equal(result["sigma"], serial.sigma)


def _torchrun(*argv: str, cache: Path) -> str:
    """stdout of ``torchrun --standalone --nproc_per_node 2 -m gmbench ARGV`` (gloo). One thread a rank, as this
    test process has (conftest): on the CPU the features' last bits depend on the thread count."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "GMBENCH_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "gmbench", *argv], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _cached(cache: Path) -> dict:
    (path,) = cache.glob("*.pt")
    return torch.load(path, weights_only=True)


def test_torchrun_eval_prints_the_single_process_scores_and_caches_its_reference(tmp_path, capsys, monkeypatch):
    samples = tmp_path / "samples.npy"
    np.save(samples, load_dataset("mnist", "train")[0][:600, 0].numpy())  # [600,28,28] uint8
    # Batches of 128: 5 of samples and 6 of the reference, each set ending with a partial one.
    argv = ["eval", str(samples), "--ref", "mnist:test:700", "--batch-size", "128", "--json",
            "--metrics", "fid,kid,is,precision,recall,density,coverage,class_entropy"]
    sharded = json.loads(_torchrun(*argv, cache=tmp_path / "sharded"))
    monkeypatch.setenv("GMBENCH_CACHE", str(tmp_path / "serial"))
    assert main(argv) == 0
    assert sharded == json.loads(capsys.readouterr().out)
    blobs = _cached(tmp_path / "sharded"), _cached(tmp_path / "serial")
    assert all(torch.equal(blobs[0][k], blobs[1][k]) for k in ("features", "logits", "mu", "sigma"))


def test_torchrun_stats_writes_the_single_process_cache_once(tmp_path, capsys, monkeypatch):
    argv = ["stats", "mnist", "--split", "test", "--n", "1234", "--batch-size", "100"]
    # "--": else torchrun's own parser takes gmbench's --n for an abbreviation of its --nnodes.
    printed = _torchrun("--", *argv, cache=tmp_path / "sharded")
    assert printed.count("computed mnist:test statistics") == 1, printed
    monkeypatch.setenv("GMBENCH_CACHE", str(tmp_path / "serial"))
    assert main(argv) == 0
    blobs = _cached(tmp_path / "sharded"), _cached(tmp_path / "serial")
    assert blobs[0]["key"] == blobs[1]["key"]
    assert all(torch.equal(blobs[0][k], blobs[1][k]) for k in ("features", "logits", "mu", "sigma"))
