"""One suite over several processes: torchrun ranks (gloo on CPU) and --shard K/N into one run folder give the
serial run's jobs and quality values, each job run once; shards refuse what may not share their folder."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gmbench.cli import main
from gmbench.report.records import load_records
from tests.conftest import requires_mnist

REPO = Path(__file__).resolve().parents[1]
SMOKE4 = ["smoke", "--seeds", "0,1,2,3", "--set", "budget.steps=6", "--device", "cpu"]  # 4 jobs of ~2 s
JOBS = [f"dcgan-mnist-s{seed}" for seed in range(4)]
HOLDER = ["smoke", "--seeds", "0,1,2,3,4,5,6,7", "--set", "budget.steps=6"]  # a run long enough to meet strangers
QUALITY = ["fid", "curve_fid", "params", "nfe", "train_steps", "sample_batch"]  # not timings
pytestmark = requires_mnist


def _env() -> dict:
    """The test's environment (its stats cache) for a child; one thread each, as two ranks share 2 cores."""
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _popen(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _gmbench(*argv: str) -> subprocess.Popen:
    return _popen([sys.executable, "-m", "gmbench", *argv])


def _torchrun(*argv: str) -> subprocess.Popen:
    return _popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   "-m", "gmbench", *argv])


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _quality(run: Path) -> dict:
    records = load_records(run)
    kept = records[records["metric"].isin(QUALITY)]
    return {(r.model, r.seed, r.metric, r.extractor, r.train_steps): r.value for r in kept.itertuples()}


def _runs_of_each_job(*outputs: str) -> dict[str, int]:
    started = re.findall(r"\] (\S+): running on ", "".join(outputs))
    return {job: started.count(job) for job in sorted(set(started) | set(JOBS))}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "run"
    assert main(["run", *SMOKE4, "--out", str(out), "--quiet"]) == 0
    return out


def test_two_torchrun_ranks_give_the_serial_runs_jobs_and_quality(serial, tmp_path):
    out = tmp_path / "ranks"
    code, log = _finish(_torchrun("run", *SMOKE4, "--out", str(out)))
    assert code == 0, log
    assert _runs_of_each_job(log) == {job: 1 for job in JOBS}  # each job claimed by one rank only
    assert sorted(p.stem for p in (out / "jobs").glob("*.json")) == JOBS
    assert _quality(out) == _quality(serial) and len(_quality(out)) >= 4 * len(QUALITY)
    manifest = json.loads((out / "manifest.json").read_text())
    ranks = manifest["distributed"]["ranks"]
    assert manifest["distributed"]["world_size"] == 2 and [r["device"] for r in ranks] == ["cpu", "cpu"]
    assert manifest["finished"] and manifest["jobs"].keys() == set(JOBS)
    records = load_records(out)
    assert set(records["host"]) == {ranks[0]["host"]} and set(records["device"]) == {"cpu"}
    assert not (out / ".gmbench.lock").exists()


def test_two_shards_side_by_side_give_the_serial_run(serial, tmp_path):
    out = tmp_path / "shards"
    shards = [_gmbench("run", *SMOKE4, "--out", str(out), "--shard", f"{k}/2") for k in (1, 2)]
    (code1, log1), (code2, log2) = (_finish(p) for p in shards)
    assert (code1, code2) == (0, 0), log1 + log2
    assert _runs_of_each_job(log1) == {"dcgan-mnist-s0": 1, "dcgan-mnist-s1": 0, "dcgan-mnist-s2": 1,
                                       "dcgan-mnist-s3": 0}
    assert _runs_of_each_job(log1, log2) == {job: 1 for job in JOBS}
    assert sorted(p.stem for p in (out / "jobs").glob("*.json")) == JOBS
    assert _quality(out) == _quality(serial)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shards"]["count"] == 2 and sorted(manifest["shards"]["members"]) == ["1", "2"]
    assert manifest["finished"] and all(m["finished"] for m in manifest["shards"]["members"].values())
    assert not list(out.glob(".gmbench.lock*"))
    code, log = _finish(_gmbench("run", *SMOKE4, "--out", str(out), "--shard", "2/2", "--resume"))
    assert code == 0 and _runs_of_each_job(log) == {job: 0 for job in JOBS}, log  # --resume per shard


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1/0", "a/b", "2"])
def test_shard_outside_1_to_n_is_a_user_error(shard, tmp_path, capsys):
    assert main(["run", *SMOKE4, "--out", str(tmp_path / "run"), "--shard", shard]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"--shard {shard!r}: expected K/N, shard K of N with 1 <= K <= N" in err
    assert not (tmp_path / "run").exists()


def _holding(out: Path, *holder: str) -> subprocess.Popen:
    """A run of 8 jobs into ``out`` (4 as shard 1/2), once it holds its lock."""
    first = _gmbench("run", *HOLDER, "--out", str(out), "--quiet", *holder)
    lock = out / (".gmbench.lock" + (".shard-1-of-2" if holder else ""))
    deadline = time.time() + 120
    while not (lock.exists() and lock.read_text()) and first.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    return first


def _refused(out: Path, capsys, *stranger: str) -> str:
    """The error of a run with the holder's settings (which --resume would admit but for the holder)."""
    assert main(["run", *HOLDER, "--out", str(out), "--resume", "--quiet", *stranger]) == 2
    return " ".join(capsys.readouterr().err.split())


def test_strangers_are_refused_while_a_shard_runs(tmp_path, capsys):
    out = tmp_path / "run"
    first = _holding(out, "--shard", "1/2")
    held = f"gmbench process {first.pid} on host"
    for stranger, refusal in ([], "A run without --shard cannot share"), (["--shard", "2/3"], "Shard 2/3 cannot share"):
        err = _refused(out, capsys, *stranger)
        assert f"{refusal} {out} with shard 1/2, which is running" in err and held in err, err
    err = _refused(out, capsys, "--shard", "1/2")  # the same shard twice
    assert f"{out} is in use by {held}" in err and ".gmbench.lock.shard-1-of-2" in err, err
    code, log = _finish(first)
    assert code == 0, log  # the shard was not disturbed


def test_a_shard_is_refused_while_a_run_without_shard_runs(tmp_path, capsys):
    out = tmp_path / "run"
    first = _holding(out)
    err = _refused(out, capsys, "--shard", "2/2")
    assert f"Shard 2/2 cannot share {out} with a run without --shard, which is running" in err, err
    assert f"gmbench process {first.pid} on host" in err
    code, log = _finish(first)
    assert code == 0, log


def test_a_user_error_on_rank_0_stops_every_rank(serial, tmp_path):
    """Rank 0 refuses to overwrite a finished run; rank 1 hears it before any job instead of waiting forever."""
    code, log = _finish(_torchrun("run", *SMOKE4, "--out", str(serial)), timeout=120)
    flat = " ".join(log.split())
    assert code != 0 and "running on" not in flat
    assert flat.count("already holds a run") == 2 and "Rank 0 stopped the run before its jobs started" in flat


def _kill_every_process_of(out: Path) -> None:
    """SIGKILL every process whose command line names ``out`` (torchrun starts its ranks in sessions of their
    own, so killing torchrun's process group would leave them running)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(out) in cmdline.read_bytes().decode(errors="replace").split("\0"):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass  # gone already


def test_torchrun_killed_mid_job_resumes_each_job_once_and_none_from_step_0(serial, tmp_path):
    """SIGKILL of the whole torchrun run while both ranks are inside a job (each past its first training
    checkpoint), then --resume: every job is recorded once, the finished ones are not run again, the
    interrupted ones continue from their checkpoints, and the quality values are the serial run's."""
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "gmbench", "run", *SMOKE4, "--out", str(out), "--checkpoint-every", "1e-6"],
                            env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(in_flight := sorted(out.glob("checkpoints/*.train.pt"))) < 2 and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.01)
    _kill_every_process_of(out)  # torchrun and both ranks at once, as a scheduler's preemption does
    proc.wait()
    interrupted = {p.name.removesuffix(".train.pt") for p in in_flight}
    finished = {p.stem for p in (out / "jobs").glob("*.json")}
    assert len(interrupted) == 2 and not interrupted & finished, "both ranks must be killed mid-job"
    code, log = _finish(_torchrun("run", *SMOKE4, "--out", str(out), "--resume", "--checkpoint-every", "1e-6"))
    assert code == 0, log
    runs = _runs_of_each_job(log)
    assert runs == {job: int(job not in finished) for job in JOBS}, (runs, finished, log)
    assert sorted(p.stem for p in (out / "jobs").glob("*.json")) == JOBS
    for job in interrupted:
        record = json.loads((out / "jobs" / f"{job}.json").read_text())
        assert record["resumed_from_step"] == 2, job  # the smoke timing's first block boundary, not step 0
    assert not list(out.glob("checkpoints/*.train.pt"))
    assert _quality(out) == _quality(serial)
