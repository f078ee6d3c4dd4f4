"""`gmbench history`: one metric of one model over every run under a results folder, in time order.

Runs are ordered by their manifest's ``started`` time; each row carries the run's commit, so a
reader sees at which commit a number moved.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from gmbench.errors import GmbenchError
from gmbench.io import write_text
from gmbench.report.fmt import markdown_table, mean_std
from gmbench.report.records import load_manifest
from gmbench.report.runs import find_runs, read_records

SERIES = ["dataset", "variant", "extractor"]


def metric_history(results_dir: str | Path, metric: str, model: str) -> pd.DataFrame:
    """One row per (run, dataset, variant, extractor): started, run_id, commit, mean, std, n_seeds."""
    runs = find_runs(results_dir)
    if not runs:
        raise GmbenchError(f"No run folders (records.csv with manifest.json) under {results_dir}.")
    rows, seen_models, seen_metrics = [], set(), set()
    for run in runs:
        records, manifest = read_records(run), load_manifest(run)
        seen_models |= set(records["model"].dropna())
        seen_metrics |= set(records["metric"].dropna())
        hit = records[(records["model"] == model) & (records["metric"] == metric) & (records["status"] == "done")]
        for key, group in hit.groupby(SERIES, dropna=False):
            rows.append(dict(zip(SERIES, key)) | {
                "started": manifest.get("started", ""), "run_id": manifest.get("run_id", run.name),
                "commit": str(manifest.get("git_commit") or ""), "mean": group["value"].mean(),
                "std": group["value"].std(), "n_seeds": group["value"].count(), "run": str(run)})
    if not rows:
        raise GmbenchError(
            f"No run under {results_dir} has metric {metric!r} for model {model!r}. Models seen: "
            f"{', '.join(sorted(seen_models))}. Metrics seen: {', '.join(sorted(seen_metrics))}.")
    frame = pd.DataFrame(rows)
    frame["_t"] = pd.to_datetime(frame["started"], utc=True, errors="coerce")
    return frame.sort_values(["_t", "run_id"] + SERIES, na_position="first").drop(columns="_t").reset_index(drop=True)


def series_label(dataset: str, variant: str, extractor: str) -> str:
    return " ".join(p for p in (dataset, variant, f"[{extractor}]" if extractor else "") if p)


def history_markdown(history: pd.DataFrame, metric: str, model: str) -> str:
    shown = pd.DataFrame({
        "started": history["started"], "run": history["run_id"], "commit": history["commit"].str[:10],
        "series": [series_label(*k) for k in zip(history["dataset"], history["variant"], history["extractor"])],
        metric: [mean_std(m, s, n) for m, s, n in zip(history["mean"], history["std"], history["n_seeds"])],
    })
    return f"## {metric} of {model} over runs\n\n" + markdown_table(shown) + "\n"


def plot_history(history: pd.DataFrame, metric: str, model: str, out_dir: Path) -> Path:
    """Metric against run (in time order, labelled by commit), one line per series; PNG and SVG."""
    runs = list(dict.fromkeys(history["run"]))
    position = {run: i for i, run in enumerate(runs)}
    ticks = history.drop_duplicates("run").set_index("run")
    fig = Figure(layout="constrained", figsize=(max(6.0, 0.6 * len(runs) + 3), 4.2))
    ax = fig.add_subplot()
    for key, line in history.groupby(SERIES, dropna=False, sort=True):
        ax.errorbar([position[r] for r in line["run"]], line["mean"], yerr=line["std"].fillna(0), marker="o",
                    capsize=3, label=series_label(*key))
    ax.set_xticks(range(len(runs)),
                  [f"{ticks.loc[r, 'commit'][:7] or '?'}\n{str(ticks.loc[r, 'started'])[:10]}" for r in runs],
                  fontsize=7, rotation=45 if len(runs) > 8 else 0)
    ax.set(xlabel="run (commit, start date)", ylabel=metric, title=f"{metric} of {model} over runs")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=7)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"history-{model}-{metric}.png"
    fig.savefig(png, dpi=110)
    fig.savefig(png.with_suffix(".svg"))
    return png


def write_history(history: pd.DataFrame, metric: str, model: str, out_dir: str | Path) -> Path:
    """The plot (PNG, SVG) and the table (CSV) as ``history-<model>-<metric>.*`` in ``out_dir``; returns the PNG."""
    png = plot_history(history, metric, model, Path(out_dir))
    write_text(png.with_suffix(".csv"), history.to_csv(index=False))
    return png
