"""What --resume compares: the effective configuration of every job of a run, and its differences.

The manifest stores each job's resolved configuration (model config after overrides, budget, curve,
variants, speed options) and the suite's metric and timing settings. A resume that would change any of them, or
leave a job of the run out, is refused with the differences named; ``--extend`` may add jobs.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from gmbench.bench.speed import SpeedSettings
from gmbench.bench.suite import Suite
from gmbench.config import config_to_dict
from gmbench.errors import GmbenchError
from gmbench.report.records import MANIFEST_FILE


def resolved_jobs(suite: Suite) -> dict:
    """What each job of ``suite`` will do: the effective configuration that --resume compares."""
    jobs = {job.job_id: {
        "model": job.model.name, "dataset": job.dataset, "seed": job.seed,
        "config": config_to_dict(job.config()),
        "budget": config_to_dict(job.model.budget), "curve": config_to_dict(job.model.curve),
        "variants": [dataclasses.asdict(v) for v in job.model.variants], "speed": config_to_dict(job.model.speed),
        **({"parallel": job.model.parallel} if job.model.parallel else {}),  # absent from older manifests
    } for job in suite.jobs()}
    settings = {"metrics": config_to_dict(suite.metrics), "timing": config_to_dict(suite.timing)}
    return json.loads(json.dumps({"settings": settings, "jobs": jobs}, default=str))  # as manifest.json holds it


def check_resumable(run_dir: Path, previous: dict, current: dict, extend: bool) -> list[str]:
    """Refuse a --resume that would change what the run measures; return the job ids ``extend`` adds."""
    if not {"jobs", "settings"} <= previous.keys():
        raise GmbenchError(f"{run_dir / MANIFEST_FILE} was written by an older gmbench and does not record its jobs' "
                           "configuration, so --resume cannot check that it would finish the same experiment; "
                           "start a new run folder with another --out.")
    for job in previous["jobs"].values():  # runs from before speed options ran every job the plain way
        job.setdefault("speed", config_to_dict(SpeedSettings()))
        job.get("budget", {}).setdefault("lr_schedule", "constant")  # and before lr schedules, at a constant lr
        job.get("budget", {}).setdefault("lr_warmup", 0)
        if "sampler" in job.get("config", {}):  # and before sampler options, every sampler with its defaults
            job["config"].setdefault("sampler_options", {})
    previous["settings"]["metrics"].setdefault("options", {})  # and before extractor options, without any
    changes: dict[str, list[str]] = {}
    for difference in _differences(previous["settings"], current["settings"]):
        changes[difference] = []
    for job_id in previous["jobs"].keys() & current["jobs"].keys():
        for difference in _differences(previous["jobs"][job_id], current["jobs"][job_id]):
            changes.setdefault(difference, []).append(job_id)
    problems = [f"{d} ({', '.join(sorted(ids))})" if ids else d for d, ids in changes.items()]
    left_out = sorted(previous["jobs"].keys() - current["jobs"].keys())
    added = [job_id for job_id in current["jobs"] if job_id not in previous["jobs"]]
    if left_out:
        problems.append(f"jobs of the run left out: {', '.join(left_out)}")
    if added and not extend:
        problems.append(f"jobs that are not in the run: {', '.join(added)} (--extend adds them)")
    if problems:
        raise GmbenchError(f"--resume would change what the run in {run_dir} measures: {'; '.join(problems)}. "
                           "Resume with the run's own settings (leave out --set, --seeds and --models, and keep the "
                           "suite file as it was), or start a new run folder with another --out.")
    return added


def _differences(old: dict, new: dict) -> list[str]:
    old, new = _flatten(old), _flatten(new)
    return [f"{key}: {_shown(old, key)} in the run, {_shown(new, key)} now" for key in sorted(old.keys() | new.keys())
            if (key in old, old.get(key)) != (key in new, new.get(key))]


def _shown(values: dict, key: str) -> str:
    return repr(values[key]) if key in values else "unset"


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
