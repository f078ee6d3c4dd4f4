"""A suite run: the run folder, its manifest, resume, and records.csv rebuilt after every job.

Layout of a run folder::

    manifest.json      provenance (versions, device, CPU, suite text, times)
    records.csv        tidy rows of every finished job (rebuilt atomically after each job)
    jobs/<id>.json     one per job: status, error, overrides, rows (written last: marks it finished)
    samples/*.png      8x8 sample grids
    checkpoints/*.pt   state_dict (+ .json config), loadable with torch.load(weights_only=True)
    tensorboard/<id>/  TensorBoard event files of each job (losses, throughput, curve points)
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

import gmbench
from gmbench.bench import tensorboard_log
from gmbench.bench.preflight import preflight
from gmbench.bench.runner import JobContext, run_job
from gmbench.bench.suite import Suite
from gmbench.device import resolve_device
from gmbench.errors import GmbenchError
from gmbench.io import remove_stale_temporaries, write_json
from gmbench.report.records import MANIFEST_FILE, RECORDS_FILE, to_frame, write_records

FINISHED = ("done", "diverged")  # statuses --resume keeps; failed jobs run again
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS = Path("results") / "runs"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict:
    """Versions and hardware: the provenance every number carries."""
    return {
        "gmbench_version": gmbench.__version__, "git_commit": git_commit(), "python": platform.python_version(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "cpu": cpu_model(), "threads": torch.get_num_threads(), "platform": platform.platform(),
    }


def default_run_dir(suite: Suite) -> Path:
    return DEFAULT_RESULTS / f"{suite.name}-{utc_now():%Y%m%dT%H%M%SZ}"


def latest_run_dir(suite: Suite) -> Path | None:
    runs = sorted(DEFAULT_RESULTS.glob(f"{suite.name}-*/{MANIFEST_FILE}"))
    return runs[-1].parent if runs else None


def finished_jobs(run_dir: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((run_dir / "jobs").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue  # cannot happen with atomic writes; a foreign file is simply re-run
        out[record["job_id"]] = record
    return out


def rebuild_records(run_dir: Path) -> None:
    rows = [row for record in finished_jobs(run_dir).values() for row in record["rows"]]
    write_records(to_frame(rows), run_dir / RECORDS_FILE)


def run_suite(suite: Suite, out: str | os.PathLike | None, device: str = "auto", resume: bool = False,
              data_root: str | None = None, quiet: bool = False, log=print) -> Path:
    """Run every job of ``suite`` into a run folder and return its path."""
    dev = resolve_device(device)
    preflight(suite, data_root)  # data and weights files open before any run folder or job
    if out is not None:
        run_dir = Path(out)
    elif resume:
        run_dir = latest_run_dir(suite)
        if run_dir is None:
            raise GmbenchError(f"--resume: no earlier run of suite {suite.name!r} under {DEFAULT_RESULTS}; give --out DIR.")
    else:
        run_dir = default_run_dir(suite)
    manifest_path = run_dir / MANIFEST_FILE
    if manifest_path.exists() and not resume:
        raise GmbenchError(f"{run_dir} already holds a run. Add --resume to finish it, or choose another --out; "
                           "gmbench never overwrites results.")
    if (run_dir / "jobs").exists() or manifest_path.exists():
        previous = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        if previous.get("suite") not in (None, suite.name):
            raise GmbenchError(f"{run_dir} holds a run of suite {previous['suite']!r}, not {suite.name!r}; "
                               "resume it with that suite or choose another --out.")
    else:
        previous = {}
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir, recursive=True)  # a killed run's own temporaries; the real files are intact
    run_id = previous.get("run_id", run_dir.name)
    manifest = {
        **previous, "run_id": run_id, "suite": suite.name, "suite_file": suite.text, "description": suite.description,
        "argv": sys.argv, "set_options": suite.overrides, **environment(dev),
        "started": previous.get("started", utc_now().isoformat()), "finished": None,
        "resumed": previous.get("resumed", []) + ([utc_now().isoformat()] if previous else []),
        "data_root": str(data_root or os.environ.get("GMBENCH_DATA_ROOT", "")),
    }
    write_json(manifest_path, manifest)
    tensorboard = tensorboard_log.available()
    if not tensorboard:
        log("tensorboard is not installed: no TensorBoard event files (pip install 'gmbench[tensorboard]')")
    ctx = JobContext(run_id, run_dir, dev, suite.metrics, suite.timing, data_root, quiet, tensorboard)
    done = {k: v["status"] for k, v in finished_jobs(run_dir).items() if v["status"] in FINISHED} if resume else {}
    jobs = suite.jobs()
    for i, job in enumerate(jobs, 1):
        if job.job_id in done:
            log(f"[{i}/{len(jobs)}] {job.job_id}: already {done[job.job_id]}, skipped")
            continue
        log(f"[{i}/{len(jobs)}] {job.job_id}: running on {dev}")
        record = run_job(job, ctx)
        write_json(run_dir / "jobs" / f"{job.job_id}.json", record)
        rebuild_records(run_dir)
        if record["error"]:
            log(f"[{i}/{len(jobs)}] {job.job_id}: FAILED: {record['error'].splitlines()[0]}")
        else:
            log(f"[{i}/{len(jobs)}] {job.job_id}: {record['status']}" + _headline(record["rows"]))
    rebuild_records(run_dir)
    write_json(manifest_path, {**manifest, "finished": utc_now().isoformat()})
    log(f"results: {run_dir}")
    return run_dir


def _headline(rows: list[dict]) -> str:
    values = {(r["metric"], r["variant"], r["extractor"]): r["value"] for r in rows}
    parts = [f"{m}{'[' + v + ']' if v else ''}{'(' + e + ')' if e else ''}={x:.4g}" for (m, v, e), x in values.items()
             if m in ("train_throughput", "sample_throughput", "fid") or m.startswith("time_to_")]
    return (" | " + ", ".join(parts)) if parts else ""
