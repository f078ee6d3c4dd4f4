"""Few-step samplers against DDPM-1000 on one checkpoint (issue 9, point 6).

    python -m benchmarks.sampler_table [--out results/reference/samplers-cpu] [--steps-factor 2] [--n 1000]

Trains the quick suite's ``ddpm`` recipe ``--steps-factor`` times as long as the quick suite does,
through the ordinary harness (so the run folder has records, manifest, grids and the checkpoint's
config), then samples the same EMA weights with ancestral DDPM-1000, ancestral-50 and
DDIM-10/20/50/1000 (``clipped_eps``; DDIM-50 also with diffusers' default step), ``--n`` samples
each, and scores them on mnist-lenet against MNIST test. It writes ``table.md`` and ``table.csv``
into the run folder: fid and its ratio to DDPM-1000's, KID, precision, recall, NFE and sampling
images/s. The claim under test: a sampler with at most 20 NFE is within 10% of DDPM-1000's
fid. DDIM-1000 is the deterministic sampler's own limit, the network's probability-flow ODE solved
finely: a few-step DDIM row is as far from it as its discretisation costs, and DDIM-1000's distance
from DDPM-1000 is what determinism itself costs on these weights. ``--resume`` finishes an
interrupted run (the harness skips a finished job).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

from gmbench.bench.session import run_suite
from gmbench.bench.suite import CurveSettings, Variant, load_suite
from gmbench.report.fmt import markdown_table, number, percent
from gmbench.report.records import load_records

REFERENCE = "ddpm-1000"
CLIPPED_EPS = {"clipped_eps": True}  # eps re-derived from the clipped x0, as the quick suite's ddim-50 row
SAMPLERS = {  # variant name -> sampling settings; the job's main row is DDPM-1000
    "ancestral-50": {"sampler": "ddpm", "sample_steps": 50},
    "ddim-10": {"sampler": "ddim", "sample_steps": 10, "sampler_options": CLIPPED_EPS},
    "ddim-20": {"sampler": "ddim", "sample_steps": 20, "sampler_options": CLIPPED_EPS},
    "ddim-50": {"sampler": "ddim", "sample_steps": 50, "sampler_options": CLIPPED_EPS},
    "ddim-50-plain-step": {"sampler": "ddim", "sample_steps": 50},  # diffusers' default step, for comparison
    "ddim-1000": {"sampler": "ddim", "sample_steps": 1000, "sampler_options": CLIPPED_EPS},  # DDIM's own many-step limit
}
CLAIM_NFE, CLAIM_PCT = 20, 10.0


def sampler_suite(steps_factor: float, n: int):
    """The quick suite's ddpm entry, trained longer, DDPM-1000 as its main row and the few-step samplers as variants."""
    quick = load_suite("quick", models=["ddpm"])
    entry = quick.models[0]
    budget = dataclasses.replace(entry.budget, steps=round(entry.budget.steps * steps_factor), seconds=None)
    entry = dataclasses.replace(entry, budget=budget, overrides={**entry.overrides, "sampler": "ddpm", "sample_steps": 1000},
                                variants=tuple(Variant(name, s, n) for name, s in SAMPLERS.items()),
                                curve=CurveSettings())  # no curve: its points would sample DDPM-1000
    metrics = dataclasses.replace(quick.metrics, names=("fid", "kid", "precision", "recall"), n_samples=n)
    header = (f"# benchmarks/sampler_table.py: the quick suite's ddpm entry, {budget.steps} steps (x{steps_factor}), "
              f"main row DDPM-1000, variants {', '.join(SAMPLERS)}, {n} samples each\n")
    return dataclasses.replace(quick, name="samplers", text=header + quick.text, models=(entry,), metrics=metrics)


def sampler_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per sampler: NFE, fid, fid relative to DDPM-1000, kid, precision, recall, images/s."""
    done = records[records["status"] == "done"].assign(variant=lambda r: r["variant"].replace("", REFERENCE))
    wide = done.pivot_table(index="variant", columns="metric", values="value", aggfunc="first")
    table = wide[["nfe", "fid", "kid", "precision", "recall", "sample_throughput"]].copy()
    table["fid_vs_ddpm1000_pct"] = 100 * (table["fid"] / table.loc[REFERENCE, "fid"] - 1)
    table["claim"] = [("within" if abs(p) <= CLAIM_PCT else "outside") if nfe <= CLAIM_NFE else ""
                      for nfe, p in zip(table["nfe"], table["fid_vs_ddpm1000_pct"])]
    order = [REFERENCE, *SAMPLERS]
    return table.loc[[v for v in order if v in table.index]].rename_axis("sampler").reset_index()


def write_table(run_dir: Path) -> Path:
    records = load_records(run_dir)
    table = sampler_table(records)
    table.to_csv(run_dir / "table.csv", index=False)
    first = records[records["metric"] == "fid"].iloc[0]
    shown = pd.DataFrame({
        "sampler": table["sampler"], "NFE": table["nfe"].map(number), "fid": table["fid"].map(number),
        "fid vs DDPM-1000": table["fid_vs_ddpm1000_pct"].map(percent), "kid": table["kid"].map(number),
        "precision": table["precision"].map(lambda v: number(v, 3)), "recall": table["recall"].map(lambda v: number(v, 3)),
        "images/s": table["sample_throughput"].map(number), f"NFE <= {CLAIM_NFE} within {CLAIM_PCT:g}%?": table["claim"]})
    n = int(first["n_samples"])
    steps = int(records.loc[records["metric"] == "train_steps", "value"].iloc[0])
    model_dtype = records.loc[records["metric"] == "train_throughput", "dtype"].iloc[0]  # fid rows carry the features' dtype
    text = (f"# Few-step samplers against DDPM-1000, one checkpoint\n\n"
            f"ddpm, quick-suite recipe trained {steps} steps in {model_dtype}; {first['extractor']} (sha256 "
            f"{first['extractor_sha256'][:12]}, features in {first['dtype']}), {n} samples per sampler against MNIST test, "
            f"seed {first['seed']}, device {first['device']}. "
            f"Made by `python -m benchmarks.sampler_table`; provenance in manifest.json.\n\n"
            + markdown_table(shown) + "\n")
    path = run_dir / "table.md"
    path.write_text(text)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("results/reference/samplers-cpu"))
    p.add_argument("--steps-factor", type=float, default=2.0, help="training steps as a multiple of the quick suite's")
    p.add_argument("--n", type=int, default=1000, help="samples per sampler")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    run_dir = run_suite(sampler_suite(args.steps_factor, args.n), args.out, device=args.device, resume=args.resume).run_dir
    print(write_table(run_dir).read_text())


if __name__ == "__main__":
    main()
