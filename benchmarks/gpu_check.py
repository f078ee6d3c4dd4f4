"""The GPU check: every device-dependent measurement of gmbench in one run, with a summary table.

    bash benchmarks/gpu_check.sh [--device cuda|cpu] [--out DIR]

Steps, each a subprocess with a time limit (their limits add up to 8 minutes on CUDA), its output kept in
``DIR/<step>.log``:

- ``smoke``: the smoke suite on the device (the harness end to end);
- ``timing``: CUDA-event totals against the wall time of a synchronised loop, within 5% (timing_sanity.py);
- ``fast-paths``: each fast path's speedup and MFU on dcgan and the ddpm U-Net at batch 128 and 512
  (fast_paths.py);
- ``inception``: the Inception track's features/s in fp32 and bf16, and the fid difference between them on
  2,000 images (bench_inception.py);
- ``standard``: a one-seed slice of the ``standard`` suite with reduced steps and 2,000 samples, on both
  feature tracks.

``--device cpu`` runs every step at tiny sizes (the test suite runs it so, to keep the script working on the
day a GPU is lent); the ``standard`` slice then trains gan-mlp and vae only, on the mnist-lenet track.
Writes DIR (default ``results/reference/gpu-<device name>/``, ``cpu-<name>`` on the CPU): the logs, the
run folders and ``summary.md``, which it also prints. Exits 1 when a step failed or ran out of time.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Step:
    name: str
    argv: list[str]
    limit: float  # seconds
    keep: str | None = None  # regex of the output lines the summary quotes (runs: their records instead)


def steps(device: str, out: Path) -> list[Step]:
    """The check's steps for ``device`` ("cuda" or "cpu"), at full size on CUDA and tiny on the CPU."""
    py, cuda = sys.executable, device == "cuda"
    gmbench = [py, "-m", "gmbench"]
    standard = (["--set", "budget.steps=300", "--set", "metrics.n_samples=2000"] if cuda else
                ["--models", "gan-mlp,vae", "--set", "budget.steps=4", "--set", "budget.batch_size=32",
                 "--set", "metrics.n_samples=64", "--set", "metrics.extractors=mnist-lenet",
                 "--set", "timing.warmup_steps=1", "--set", "timing.block_steps=1", "--set", "timing.sample_batch=64"])
    return [
        Step("smoke", [*gmbench, "run", "smoke", "--device", device, "--out", str(out / "smoke"), "--quiet"], 90),
        Step("timing", [py, "benchmarks/timing_sanity.py", "--device", device], 30, r"timing sanity"),
        Step("fast-paths", [py, "benchmarks/fast_paths.py", "--device", device,
                            *(["--models", "dcgan,ddpm", "--batch", "128,512"] if cuda else ["--quick"])],
             150, r"GFLOP/s|images/s| (train|sample) "),
        Step("inception", [py, "benchmarks/bench_inception.py", "--device", device,
                           *(["--batch", "256", "--fid-images", "2000"] if cuda else
                             ["--batch", "1", "--repeats", "1", "--dtypes", "fp32", "--fid-images", "0"])],
             60, r"img/s|Frechet|features"),
        Step("standard", [*gmbench, "run", "standard", "--seeds", "0", "--device", device, *standard,
                          "--out", str(out / "standard"), "--quiet"], 150),
    ]


def run_step(step: Step, out: Path) -> tuple[str, float, list[str]]:
    """(status, seconds, quoted lines) of one step; its whole output goes to ``out/<name>.log``."""
    start = time.perf_counter()
    log = out / f"{step.name}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1"}
    with log.open("w") as sink:
        try:
            code = subprocess.run(step.argv, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                  timeout=step.limit).returncode
            status = "ok" if code == 0 else f"FAILED (exit {code})"
        except subprocess.TimeoutExpired:
            status = f"OUT OF TIME ({step.limit:.0f} s)"
        except OSError as exc:
            status = f"FAILED ({exc})"
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()
             if step.keep and re.search(step.keep, line)]
    return status, time.perf_counter() - start, lines


def quality_table(run: Path) -> list[str]:
    """fid per model and track, with the throughputs (and MFU where recorded), of a finished run folder."""
    if not (run / "records.csv").exists():
        return []
    from gmbench.report.records import load_records

    records = load_records(run)
    records = records[records["variant"] == ""]
    fid = records[records["metric"] == "fid"].pivot_table(index="model", columns="extractor", values="value")
    speed = records[records["metric"].isin(["train_throughput", "sample_throughput", "train_mfu", "sample_mfu"])]
    speed = speed.pivot_table(index="model", columns="metric", values="value")
    table = fid.add_prefix("fid ").join(speed, how="outer")
    header = "| model | " + " | ".join(table.columns) + " |"
    rows = [f"| {model} | " + " | ".join(f"{v:.4g}" for v in row) + " |" for model, row in table.iterrows()]
    return ["", f"`{run.name}` (job rows of the configured sampler):", "", header,
            "|---" * (len(table.columns) + 1) + "|", *rows]


def device_slug(device: str) -> str:
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
    else:
        from gmbench.bench.session import cpu_model

        name = cpu_model()
    return ("gpu-" if device == "cuda" else "cpu-") + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="output folder (default results/reference/<device>/)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: --device cuda, but torch sees no CUDA device here; give --device cpu for the tiny check.",
              file=sys.stderr)
        return 2
    out = (args.out or REPO / "results" / "reference" / device_slug(args.device)).resolve()
    if any(out.glob("*/manifest.json")):
        print(f"gpu_check: {out} already holds a check's run folders; move them away or give another --out "
              "(gmbench never overwrites results).", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    summary = [f"# gpu_check on {args.device} ({device_slug(args.device)}), torch {torch.__version__}", "",
               "| step | status | seconds |", "|---|---|---|"]
    quoted, failed = [], False
    for step in steps(args.device, out):
        print(f"gpu_check: {step.name} ...", flush=True)
        status, seconds, lines = run_step(step, out)
        failed |= status != "ok"
        summary.append(f"| {step.name} | {status} | {seconds:.0f} |")
        if step.keep:
            quoted += ["", f"## {step.name}", "", "```", *(lines or [f"(no result lines; see {step.name}.log)"]), "```"]
    for run in ("smoke", "standard"):
        quoted += quality_table(out / run)
    text = "\n".join(summary + quoted) + "\n"
    (out / "summary.md").write_text(text)
    print(text, end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
