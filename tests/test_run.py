"""End to end: the smoke suite through `gmbench run`, resume, and a SIGKILL mid-suite."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from gmbench.cli import main
from gmbench.report.records import COLUMNS, load_records
from tests.conftest import requires_mnist

pytestmark = requires_mnist
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "smoke"
    assert main(["run", "smoke", "--out", str(out), "--quiet"]) == 0
    return out


def test_smoke_run_writes_records_manifest_grid_checkpoint(smoke_run):
    records = load_records(smoke_run)
    assert list(records.columns[: len(COLUMNS)]) == COLUMNS
    assert set(records["status"]) == {"done"}
    metrics = set(records["metric"])
    assert {"train_throughput", "sample_throughput", "step_time", "peak_memory", "params", "nfe",
            "train_time", "sample_time", "fid"} <= metrics
    fid = records.query("metric == 'fid'").iloc[0]
    assert fid["extractor"] == "mnist-lenet" and len(fid["extractor_sha256"]) == 64 and fid["n_samples"] == 128
    assert fid["value"] > 0
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    assert manifest["suite"] == "smoke" and manifest["finished"] and manifest["torch"] == torch.__version__
    assert "[models.dcgan]" in manifest["suite_file"]
    assert (smoke_run / "samples" / "dcgan-mnist-s0.png").stat().st_size > 0


def test_checkpoint_loads_with_weights_only_and_reproduces_samples(smoke_run):
    from gmbench.config import apply_overrides
    from gmbench.models.gan import DCGAN

    meta = json.loads((smoke_run / "checkpoints" / "dcgan-mnist-s0.json").read_text())
    state = torch.load(smoke_run / "checkpoints" / "dcgan-mnist-s0.pt", weights_only=True)
    model = DCGAN(apply_overrides(DCGAN.Config(), meta["config"]))
    model.load_state_dict(state)
    a = model.sample(4, torch.Generator().manual_seed(1))
    b = model.sample(4, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (4, 1, 28, 28)


def test_second_run_refuses_and_resume_reruns_nothing(smoke_run, capsys):
    before = (smoke_run / "jobs" / "dcgan-mnist-s0.json").read_text()
    assert main(["run", "smoke", "--out", str(smoke_run)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["run", "smoke", "--out", str(smoke_run), "--resume"]) == 0
    assert "already done, skipped" in capsys.readouterr().out
    assert (smoke_run / "jobs" / "dcgan-mnist-s0.json").read_text() == before


def test_a_seconds_budget_that_ends_training_before_its_steps_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "smoke", "--out", str(out), "--set", "budget.seconds=1e-9"]) == 0
    steps = load_records(out).query("metric == 'train_steps'")["value"].item()
    assert 0 < steps < 12  # the first block runs, then the clock stops it
    assert (f"dcgan-mnist-s0: its 1e-09 s budget ended training at step {steps:.0f} of 12, so its quality is not "
            "comparable") in capsys.readouterr().out


def test_failed_job_is_recorded_and_suite_goes_on(tmp_path, monkeypatch):
    from gmbench.models.gan import DCGAN

    original = DCGAN.train_step

    def flaky(self, x):  # the first job's model breaks, the second's works
        if self.config.width == 16 and torch.initial_seed() == 0:
            raise RuntimeError("boom")
        return original(self, x)

    monkeypatch.setattr(DCGAN, "train_step", flaky)
    out = tmp_path / "run"
    assert main(["run", "smoke", "--out", str(out), "--seeds", "0,1", "--quiet"]) == 1  # a failed job fails the run
    jobs = {p.stem: json.loads(p.read_text()) for p in (out / "jobs").glob("*.json")}
    assert jobs["dcgan-mnist-s0"]["status"] == "failed" and "RuntimeError: boom" in jobs["dcgan-mnist-s0"]["error"]
    assert jobs["dcgan-mnist-s1"]["status"] == "done"
    records = load_records(out)
    assert set(records.query("seed == 0")["status"]) == {"failed"}


def test_non_finite_loss_marks_job_diverged(tmp_path, monkeypatch):
    from gmbench.models.gan import DCGAN

    monkeypatch.setattr(DCGAN, "train_step", lambda self, x: {"loss": torch.tensor(float("nan"))})
    out = tmp_path / "run"
    assert main(["run", "smoke", "--out", str(out), "--quiet"]) == 0
    job = json.loads((out / "jobs" / "dcgan-mnist-s0.json").read_text())
    assert job["status"] == "diverged"
    assert "fid" not in {r["metric"] for r in job["rows"]}


def assert_same_weights(run_a: Path, run_b: Path, job_id: str) -> None:
    a = torch.load(run_a / "checkpoints" / f"{job_id}.pt", weights_only=True)
    b = torch.load(run_b / "checkpoints" / f"{job_id}.pt", weights_only=True)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_sigkill_mid_suite_loses_no_finished_job(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "gmbench", "run", "smoke", "--out", str(out), "--seeds", "0,1,2,3", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, cwd=REPO)
    first = out / "jobs" / "dcgan-mnist-s0.json"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists()
    finished = {p.stem: p.read_text() for p in (out / "jobs").glob("*.json")}
    for text in finished.values():
        json.loads(text)  # every job file is whole
    if (out / "records.csv").exists():  # rebuilt from jobs/ right after each job: whole, maybe one job behind
        pd.read_csv(out / "records.csv")
    assert main(["run", "smoke", "--out", str(out), "--seeds", "0,1,2,3", "--resume", "--quiet"]) == 0
    for job_id, text in finished.items():
        assert (out / "jobs" / f"{job_id}.json").read_text() == text  # finished jobs were not re-run
    assert sorted(p.stem for p in (out / "jobs").glob("*.json")) == [f"dcgan-mnist-s{i}" for i in range(4)]
    assert not list(out.rglob("*.tmp"))
    assert set(load_records(out)["status"]) == {"done"}


def test_curve_points_and_time_to_rows_are_recorded(smoke_run):
    records = load_records(smoke_run)
    curve = records[records["metric"] == "curve_fid"].sort_values("train_steps")
    # smoke: warm-up 2 steps, blocks of 5, every_steps 5 -> points after steps 7 and 12 (the end)
    assert curve["train_steps"].tolist() == [7, 12]
    assert (curve["n_samples"] == 64).all() and (curve["extractor"] == "mnist-lenet").all()
    times = curve["train_time"].tolist()
    train_time = records.query("metric == 'train_time'")["value"].iloc[0]
    assert 0 < times[0] < times[1] <= train_time  # the clock is tested in test_curves.py
    assert records.query("metric == 'curve_time'")["value"].iloc[0] > 0
    for target in (5000, 50):
        row = records[records["metric"] == f"time_to_fid@{target}"].iloc[0]
        first = curve[curve["value"] <= target].head(1)
        if len(first):
            assert row["value"] == first["train_time"].iloc[0] and row["train_steps"] == first["train_steps"].iloc[0]
        else:
            assert row["value"] == float("inf") and pd.isna(row["train_steps"]) and pd.isna(row["train_time"])
        assert row["unit"] == "s" and not row["higher_is_better"] and row["n_samples"] == 64
    assert records.query("metric == 'time_to_fid@50'")["value"].iloc[0] == float("inf")  # fid ~1000 after 12 steps
    others = records[~records["metric"].str.startswith(("curve_fid", "time_to_"))]
    assert others["train_steps"].isna().all() and others["train_time"].isna().all()


def test_tensorboard_event_files_hold_losses_throughput_and_curve(smoke_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = smoke_run / "tensorboard" / "dcgan-mnist-s0"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    events = EventAccumulator(str(folder))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"loss/loss_d", "loss/loss_g", "train/images_per_s", "curve/fid"}
    assert [e.step for e in events.Scalars("loss/loss_d")] == [2, 7, 12]
    assert [e.step for e in events.Scalars("train/images_per_s")] == [7, 12]  # the warm-up block is not timed
    records = load_records(smoke_run)
    curve = records[records["metric"] == "curve_fid"].sort_values("train_steps")
    logged = events.Scalars("curve/fid")
    assert [e.step for e in logged] == curve["train_steps"].tolist()
    assert [e.value for e in logged] == pytest.approx(curve["value"].tolist(), rel=1e-6)
    # wall time = training start + training seconds: TensorBoard's relative axis is training time
    assert logged[1].wall_time - logged[0].wall_time == pytest.approx(
        curve["train_time"].iloc[1] - curve["train_time"].iloc[0], abs=1e-5)


def test_curves_change_neither_the_trained_weights_nor_the_final_scores(smoke_run, tmp_path):
    out = tmp_path / "no-curves"
    assert main(["run", "smoke", "--out", str(out), "--quiet", "--set", "curve.every_steps=none",
                 "--set", "curve.targets="]) == 0
    off = load_records(out)
    assert not off["metric"].str.startswith(("curve_", "time_to_")).any()
    assert_same_weights(smoke_run, out, "dcgan-mnist-s0")
    on = load_records(smoke_run)
    assert on.query("metric == 'fid'")["value"].iloc[0] == off.query("metric == 'fid'")["value"].iloc[0]


def quality_rows(run: Path) -> dict:
    """Every row that is not a timing: (metric, variant, extractor, train_steps) -> value."""
    records = load_records(run)
    kept = records[records["metric"].isin(["fid", "curve_fid", "train_steps", "params", "nfe"])]
    return {(r.metric, r.variant, r.extractor, r.train_steps): r.value for r in kept.itertuples()}


def kill_mid_training(out: Path, *options: str) -> Path:
    """Run the smoke suite (with ``options``) into ``out`` in a subprocess, writing training checkpoints at every
    block boundary, and SIGKILL it once dcgan's is written; returns that checkpoint's path."""
    cmd = [sys.executable, "-m", "gmbench", "run", "smoke", "--out", str(out), "--quiet", "--checkpoint-every", "1e-6",
           *options]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}  # one thread, as in-process (conftest)
    proc = subprocess.Popen(cmd, env=env, cwd=REPO)
    saved = out / "checkpoints" / "dcgan-mnist-s0.train.pt"  # every block boundary: after steps 2 and 7
    deadline = time.time() + 300
    while not saved.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert saved.exists() and not (out / "jobs").exists()  # killed mid-training
    return saved


def test_job_killed_mid_training_resumes_from_its_training_checkpoint(smoke_run, tmp_path):
    """SIGKILL during training, then --resume: the job continues from its last training checkpoint (not
    step 0) and ends with the weights and quality rows of the uninterrupted ``smoke_run``."""
    out = tmp_path / "run"
    saved = kill_mid_training(out)
    assert main(["run", "smoke", "--out", str(out), "--resume", "--quiet"]) == 0
    record = json.loads((out / "jobs" / "dcgan-mnist-s0.json").read_text())
    assert record["resumed_from_step"] in (2, 7)
    assert not saved.exists()  # removed once the job's record is written
    assert_same_weights(smoke_run, out, "dcgan-mnist-s0")
    assert quality_rows(out) == quality_rows(smoke_run)
