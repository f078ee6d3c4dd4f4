"""A suite run: the run folder, its manifest, resume, and records.csv rebuilt after every job.

One process runs the suite, or several share it (distributed.py: torchrun ranks, --shard K/N).

Layout of a run folder::

    .gmbench.lock      held by the run's process while it runs (run_lock.py): one run per folder
                       (.gmbench.lock.shard-K-of-N: one per running --shard; shards of one N share the folder)
    .gmbench.guard     flocked briefly to take locks, write the manifest, rebuild records.csv
    manifest.json      provenance (versions, device, CPU, suite text, times), the selected seeds and
                       models, each job's resolved configuration (what --resume checks), extensions,
                       the device's measured peak FLOP/s per dtype in use (``peak_flops``, flops.py)
    records.csv        tidy rows of every finished job (rebuilt atomically after each job)
    jobs/<id>.json     one per job: status, error, overrides, rows (written last: marks it finished)
    samples/*.png      sample grids: the first 64 samples, 8 to a row
    checkpoints/*.pt   state_dict (+ .json config), loadable with torch.load(weights_only=True)
    checkpoints/<id>.train.pt  an unfinished job's whole training state (checkpoint.py), for --resume
    tensorboard/<id>/  TensorBoard event files of each job (losses, throughput, curve points)
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import platform
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import torch

import gmbench
from gmbench.bench import checkpoint, flops, tensorboard_log
from gmbench.bench.data_parallel import Alone, DataParallel
from gmbench.bench.distributed import Solo, here
from gmbench.bench.preflight import preflight
from gmbench.bench.resume_check import check_resumable, resolved_jobs
from gmbench.bench.run_lock import folder_guard
from gmbench.bench.runner import JobContext, model_dtype, run_job
from gmbench.bench.suite import Suite
from gmbench.errors import GmbenchError
from gmbench.io import remove_stale_temporaries, write_json
from gmbench.report.records import MANIFEST_FILE, RECORDS_FILE, to_frame, write_records

FINISHED = ("done", "diverged")  # statuses --resume keeps; failed jobs run again
REPO_ROOT = Path(__file__).resolve().parents[2]  # the source checkout, when gmbench runs from one
DEFAULT_RESULTS = Path("results") / "runs"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def git_commit() -> str | None:
    """The checkout's commit, "-dirty" when tracked files changed; None when git is missing or gmbench does not
    run from its own checkout (an installed wheel: the folders above site-packages may be another project's repo)."""
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--show-toplevel", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        if out.returncode != 0 or Path(out.stdout.splitlines()[0]).resolve() != REPO_ROOT:
            return None
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.splitlines()[1] + ("-dirty" if dirty.stdout.strip() else "")


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


def default_run_dir(suite_name: str) -> Path:
    return DEFAULT_RESULTS / f"{suite_name}-{utc_now():%Y%m%dT%H%M%SZ}"


def latest_run_dir(suite_name: str) -> Path | None:
    runs = sorted(DEFAULT_RESULTS.glob(f"{suite_name}-*/{MANIFEST_FILE}"))
    return runs[-1].parent if runs else None


def run_folder(suite_name: str, out: str | os.PathLike | None, resume: bool = False) -> Path:
    """The run folder: ``out``, else (``resume``) the suite's latest run, else a new one under results/runs."""
    if out is None and resume:
        run_dir = latest_run_dir(suite_name)
        if run_dir is None:
            raise GmbenchError(f"--resume: no earlier run of suite {suite_name!r} under {DEFAULT_RESULTS}; "
                               "give --out DIR.")
        return run_dir
    run_dir = Path(out) if out is not None else default_run_dir(suite_name)
    try:
        is_file = run_dir.exists() and not run_dir.is_dir()
    except OSError as exc:  # e.g. a name longer than the filesystem allows
        raise GmbenchError(f"--out {run_dir}: {exc.strerror}; choose another folder.") from None
    if is_file:
        raise GmbenchError(f"--out {run_dir} is a file, not a folder; choose a folder for the run (it is created).")
    return run_dir


def read_manifest(run_dir: Path) -> dict:
    """The run's manifest.json, or {} where there is none yet."""
    path = run_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise GmbenchError(f"{path} cannot be read ({exc}), so gmbench cannot tell how this run was configured. "
                           "Restore the file, or start a new run folder with another --out.") from None
    if not isinstance(manifest, dict):
        raise GmbenchError(f"{path} is not a gmbench manifest (a JSON object); restore it, or start a new run "
                           "folder with another --out.")
    return manifest


def read_job_records(run_dir: Path) -> dict[str, dict]:
    """Every ``jobs/*.json`` by job id; a file gmbench cannot have written is an error naming it."""
    out = {}
    for path in sorted((run_dir / "jobs").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            problem = f"cannot be read ({exc})"
        else:
            problem = _job_record_problem(record, path.stem)
        if problem:
            raise GmbenchError(f"{path} {problem}. gmbench writes job files whole, so it was changed or put there "
                               f"by something else. Move it out of {path.parent} (its job then runs again) or restore "
                               "it, and run again.")
        out[record["job_id"]] = record
    return out


def _job_record_problem(record, stem: str) -> str | None:
    if not isinstance(record, dict) or not isinstance(record.get("job_id"), str):
        return "is not a job record (no job_id)"
    if record["job_id"] != stem:
        return f"holds job {record['job_id']!r}, not {stem!r}"
    if record.get("status") not in (*FINISHED, "failed") or not isinstance(record.get("rows"), list):
        return "is not a whole job record (status done, diverged or failed, and rows)"
    return None


def rebuild_records(run_dir: Path) -> None:
    """records.csv from every jobs/*.json, under the folder's guard: processes sharing the folder take turns."""
    kept = f"records.csv could not be rebuilt (the jobs' results are safe in {run_dir / 'jobs'})"
    with folder_guard(run_dir), _saving(run_dir / RECORDS_FILE, kept) as path:
        rows = [row for record in read_job_records(run_dir).values() for row in record["rows"]]
        write_records(to_frame(rows), path)


@contextmanager
def _saving(path: Path, what: str) -> Iterator[Path]:
    """Turn a failed write of ``path`` into one paragraph that says what was not saved."""
    try:
        yield path
    except OSError as exc:
        raise GmbenchError(f"{what}: writing {path} failed ({exc.strerror or exc}). Make {path.parent} writable and "
                           "check that the disk has space, then run again with --resume.") from None


@dataclass(frozen=True)
class RunOutcome:
    """The run folder and the status of each job of the suite (done, diverged or failed)."""

    run_dir: Path
    statuses: dict[str, str]

    def count(self, status: str) -> int:
        return sum(s == status for s in self.statuses.values())

    @property
    def summary(self) -> str:
        n = len(self.statuses)
        return (f"{n} job{'s' if n != 1 else ''}: {self.count('done')} done, {self.count('diverged')} diverged, "
                f"{self.count('failed')} failed")


def _previous_run(run_dir: Path, suite: Suite, resume: bool, team: Solo) -> dict:
    """The manifest of the run already in ``run_dir`` ({} for a new run), after checking it may be resumed
    (or joined, by a sibling shard)."""
    exists = (run_dir / MANIFEST_FILE).exists()
    previous = read_manifest(run_dir) if resume or (exists and team.shard) else {}
    if exists and not resume and not team.may_join(previous):
        raise GmbenchError(f"{run_dir} already holds a run. Add --resume to finish it, or choose another --out; "
                           "gmbench never overwrites results.")
    if not previous and any((run_dir / "jobs").glob("*.json")):
        raise GmbenchError(f"{run_dir / 'jobs'} holds job files but {run_dir} has no {MANIFEST_FILE}, so it is not a "
                           "run gmbench can finish or add to; choose another --out.")
    if previous.get("suite") not in (None, suite.name):
        raise GmbenchError(f"{run_dir} holds a run of suite {previous['suite']!r}, not {suite.name!r}; "
                           "resume it with that suite or choose another --out.")
    return previous


def run_suite(suite: Suite, out: str | os.PathLike | None, device: str = "auto", resume: bool = False,
              extend: bool = False, data_root: str | None = None, quiet: bool = False, log=print,
              checkpoint_every: float = checkpoint.DEFAULT_EVERY, team: Solo | None = None) -> RunOutcome:
    """Run every job of ``suite`` into a run folder, holding its lock; ``extend`` lets --resume add jobs.

    ``checkpoint_every``: seconds between a job's training checkpoints (0: none), which --resume continues.
    ``team``: the processes sharing the run (distributed.py: torchrun ranks, or a shard); this one alone by default.
    """
    team = team or Solo()
    dev, run_dir = None, None

    def check() -> dict:
        nonlocal dev, run_dir
        dev = team.device(device)
        team.check(suite.jobs())
        preflight(suite, data_root)  # data and weights files open before any run folder or job
        run_dir = _make_run_dir(suite.name, out, resume)
        return here(dev)

    members = team.agree("check", check)
    with ExitStack() as held:
        def open_run() -> list[str | None]:
            lock = held.enter_context(team.lock(run_dir))
            return [lock.token, *_start_manifest(run_dir, suite, resume, extend, data_root, dev, team, members)]

        [(token, run_id, peak_flops)] = team.agree("open", open_run, leader_only=True)
        if not team.leader:
            held.enter_context(team.lock(run_dir, token))  # a member of rank 0's run
        done = {k: v["status"] for k, v in read_job_records(run_dir).items() if v["status"] in FINISHED}
        _run_jobs(suite, run_dir, run_id, dev, done, data_root, quiet, log, team, checkpoint_every, peak_flops)
        team.wait_for_all()
        if team.leader:
            rebuild_records(run_dir)
            _finish_manifest(run_dir, team)
    records = read_job_records(run_dir)
    outcome = RunOutcome(run_dir, {job.job_id: records[job.job_id]["status"] for job in team.mine(suite.jobs())})
    log(f"{outcome.summary}; results: {run_dir}")
    return outcome


def _make_run_dir(suite_name: str, out: str | os.PathLike | None, resume: bool) -> Path:
    run_dir = run_folder(suite_name, out, resume)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GmbenchError(f"Cannot create the run folder {run_dir}: {exc.strerror or exc}; "
                           "choose another --out.") from None
    return run_dir


def _start_manifest(run_dir: Path, suite: Suite, resume: bool, extend: bool, data_root: str | None,
                    dev: torch.device, team: Solo, members: list[dict]) -> tuple[str, dict[str, float]]:
    """Check the run folder may take this run and write its manifest; returns the run id and the peak FLOP/s
    per dtype of the run's device (measured once per run: a resume or sibling shard reuses the recorded ones)."""
    with folder_guard(run_dir):
        previous = _previous_run(run_dir, suite, resume, team)
        current = resolved_jobs(suite)
        added = check_resumable(run_dir, previous, current, extend) if previous else list(current["jobs"])
        remove_stale_temporaries(run_dir, recursive=True)  # a killed run's own temporaries; the real files are intact
        now = utc_now().isoformat()
        resumed = resume and bool(previous)
        env = environment(dev)
        definition = {"suite_file": suite.text, "set_options": suite.overrides, "seeds": list(suite.seeds),
                      "models": [m.name for m in suite.models]}
        manifest = {
            **previous, "run_id": previous.get("run_id", run_dir.name), "suite": suite.name,
            "description": suite.description, "argv": sys.argv, **(definition if added else {}), **current,
            **env, "started": previous.get("started", now), "finished": None,
            "peak_flops": flops.peaks(dev, dtypes_in_use(suite, dev), previous.get("peak_flops", {})),
            "peak_flops_method": previous.get("peak_flops_method", flops.peak_method(dev, env["device_name"])),
            "resumed": previous.get("resumed", []) + ([now] if resumed else []),
            "extended": previous.get("extended", []) + ([{"at": now, "argv": sys.argv, "added": added}]
                                                          if resumed and added else []),
            "data_root": str(data_root or os.environ.get("GMBENCH_DATA_ROOT", "")),
        }
        manifest.update(team.manifest_entry(previous, members))
        with _saving(run_dir / MANIFEST_FILE, "The run's manifest could not be saved") as path:
            write_json(path, manifest)
    return manifest["run_id"], manifest["peak_flops"]


def dtypes_in_use(suite: Suite, device: torch.device) -> list[str]:
    """The precisions the suite's jobs train and sample in on ``device`` ("bf16", "fp32"): the peaks a run measures."""
    return sorted({model_dtype(job.config(), device) for job in suite.jobs()})


def _finish_manifest(run_dir: Path, team: Solo) -> None:
    with folder_guard(run_dir):
        manifest = read_manifest(run_dir)
        complete = manifest["jobs"].keys() <= read_job_records(run_dir).keys()
        with _saving(run_dir / MANIFEST_FILE, "The run's manifest could not be saved") as path:
            write_json(path, {**manifest, **team.finish_entry(manifest, complete)})


def _run_jobs(suite: Suite, run_dir: Path, run_id: str, dev: torch.device, done: dict[str, str],
              data_root: str | None, quiet: bool, log, team: Solo, checkpoint_every: float,
              peak_flops: dict[str, float]) -> None:
    """Run the jobs of ``team``'s share not ``done`` yet, saving each record as it ends."""
    tensorboard = tensorboard_log.available()
    if not tensorboard:
        log("tensorboard is not installed: no TensorBoard event files (pip install 'gmbench[tensorboard]')")
    ctx = JobContext(run_id, run_dir, dev, suite.metrics, suite.timing, data_root, quiet, tensorboard, checkpoint_every,
                     peak_flops)
    jobs = suite.jobs()
    shared = ((i, job, DataParallel(dev)) for i, job in team.together(jobs))  # every rank on each, in step
    claimed = ((i, job, Alone()) for i, job in team.claim(jobs))  # one rank each, claimed as ranks get free
    for i, job, job_team in itertools.chain(shared, claimed):
        step = f"[{i + 1}/{len(jobs)}] {job.job_id}"
        if job.job_id in done:
            log(f"{step}: already {done[job.job_id]}, skipped")
            continue
        if not job_team.leads:
            _run_beside_the_leader(job, dataclasses.replace(ctx, quiet=True), job_team, log, step)
            continue
        log(f"{step}: running on {dev}" + (f" and {job_team.world - 1} more rank(s), data-parallel"
                                            if job_team.world > 1 else ""))
        record = run_job(job, ctx, job_team)
        if record["error"] and not job_team.first_to_fail(job.job_id):
            _abandon_if_shared(job_team, log, f"{step}: FAILED after another rank ({record['error'].splitlines()[0]})")
        _save_record(run_dir, record)
        checkpoint.discard(run_dir, job.job_id)
        if team.leader:
            rebuild_records(run_dir)
        if record["resumed_from_step"] is not None:
            log(f"{step}: continued from its training checkpoint at step {record['resumed_from_step']}")
        if record["error"]:
            log(f"{step}: FAILED: {record['error'].splitlines()[0]}")
            _abandon_if_shared(job_team, log, step)
        else:
            log(f"{step}: {record['status']}" + _headline(record["rows"]))
            if record["status"] == "done" and (short := _stopped_on_time(job, record["rows"])):
                log(f"{step}: {short}")


def _save_record(run_dir: Path, record: dict) -> None:
    lost = f"Job {record['job_id']} ran to the end, but its results could not be saved (--resume runs it again)"
    with _saving(run_dir / "jobs" / f"{record['job_id']}.json", lost) as path:
        write_json(path, record)


def _run_beside_the_leader(job, ctx: JobContext, team: Alone, log, step: str) -> None:
    """Run a data-parallel job as one of its ranks other than the leader, which writes the job's record (this
    rank does when the job fails here first)."""
    record = run_job(job, ctx, team)
    if record["error"]:
        if team.first_to_fail(job.job_id):
            _save_record(ctx.run_dir, record)
        log(f"{step}: FAILED on rank {team.rank}: {record['error'].splitlines()[0]}")
        _abandon_if_shared(team, log, step)


def _abandon_if_shared(team: Alone, log, step: str) -> None:
    """A data-parallel job failed on this rank: the others wait for it inside a collective, so end this
    process (exit 1) and torchrun stops them all; --resume runs the job again."""
    if team.world > 1:
        log(f"{step}: a data-parallel job failed, so this torchrun run stops; --resume runs it again")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def _stopped_on_time(job, rows: list[dict]) -> str | None:
    """Says so when a job's seconds budget ended its training before its step budget (a slower or busier
    machine than the suite was sized on), or None."""
    budget = job.model.budget
    steps = next((r["value"] for r in rows if r["metric"] == "train_steps"), None)
    if budget.steps is None or budget.seconds is None or steps is None or steps >= budget.steps:
        return None
    return (f"its {budget.seconds:g} s budget ended training at step {steps:.0f} of {budget.steps}, so its quality "
            f"is not comparable with a run that trained all of them (gmbench compare says so); to train them all, "
            f"raise it (--set budget.seconds=S)")


def _headline(rows: list[dict]) -> str:
    values = {(r["metric"], r["variant"], r["extractor"]): r["value"] for r in rows}
    parts = [f"{m}{'[' + v + ']' if v else ''}{'(' + e + ')' if e else ''}={x:.4g}" for (m, v, e), x in values.items()
             if m in ("train_throughput", "sample_throughput", "fid") or m.startswith("time_to_")]
    return (" | " + ", ".join(parts)) if parts else ""
