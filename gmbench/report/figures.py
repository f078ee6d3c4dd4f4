"""Report figures (matplotlib's object API with the Agg canvas: no pyplot state, no display needed).

Each function takes the long summary of ``tables.summarise`` (or the runs, for sample grids),
draws one figure and writes it as PNG and SVG; it returns the PNG path, or None when the
records hold nothing to draw.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pandas as pd
from matplotlib.figure import Figure

from gmbench.report import metrics_info
from gmbench.report.runs import Run
from gmbench.report.tables import REFERENCE_ROLES, row_label

QUALITY_PREFERENCE = [("fid", "mnist-lenet"), ("fid", "inception-v3-tf")]


def _save(fig: Figure, out_dir: Path, stem: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{stem}.png"
    fig.savefig(png, dpi=110)
    fig.savefig(out_dir / f"{stem}.svg")
    return png


def headline_quality(summary: pd.DataFrame) -> tuple[str, str] | None:
    """The (metric, extractor) plotted as "quality": LeNet FID, else Inception FID, else the first FID."""
    present = set(zip(summary["metric"], summary["extractor"]))
    for pair in QUALITY_PREFERENCE:
        if pair in present:
            return pair
    return next((p for p in sorted(present) if p[0] == "fid"), None)


def model_colours(models: pd.Series) -> dict[str, str]:
    """One matplotlib cycle colour per model name, in sorted order, so that every figure drawn from the same
    records gives a model the same colour (its variants share it)."""
    return {m: f"C{i % 10}" for i, m in enumerate(sorted(models.dropna().unique()))}


VARIANT_MARKERS = "sD^v<>"  # a model's main row is "o"; its variants take these in sorted order


def _metric(summary: pd.DataFrame, metric: str, extractor: str = "") -> pd.DataFrame:
    return summary[(summary["metric"] == metric) & (summary["extractor"] == extractor)]


def quality_vs_train_time(summary: pd.DataFrame, out_dir: Path) -> Path | None:
    """Headline quality of each (model, variant) against its model's training time, one panel per dataset."""
    quality = headline_quality(summary)
    if quality is None:
        return None
    q = _metric(summary, *quality)
    t = _metric(summary, "train_time").groupby(["dataset", "model"])[["mean", "std"]].first()
    joined = q.join(t.add_suffix("_time"), on=["dataset", "model"]).dropna(subset=["mean_time"])
    if joined.empty:
        return None
    colours = model_colours(summary["model"])
    datasets = sorted(joined["dataset"].unique())
    fig = Figure(layout="constrained", figsize=(5.5 * len(datasets), 4.2))
    for i, dataset in enumerate(datasets):
        ax = fig.add_subplot(1, len(datasets), i + 1)
        for model, rows in joined[joined["dataset"] == dataset].groupby("model"):
            variants = sorted(v for v in rows["variant"] if v)
            # a model's variants share its training time: labels step down from the worst score to the best, so
            # that each sits by its own point and close scores stay legible
            for nth, (_, r) in enumerate(rows.sort_values("mean", ascending=False).iterrows()):
                marker = VARIANT_MARKERS[variants.index(r["variant"]) % len(VARIANT_MARKERS)] if r["variant"] else "o"
                ax.errorbar(r["mean_time"], r["mean"], xerr=_err(r["std_time"]), yerr=_err(r["std"]), fmt=marker,
                            color=colours[model], capsize=3)
                ax.annotate(row_label(model, r["variant"]), (r["mean_time"], r["mean"]), fontsize=7,
                            xytext=(4, 3 - 9 * nth), textcoords="offset points")
        ax.set(xlabel="training time (s)", ylabel=f"{quality[0]} [{quality[1]}]", title=dataset)
        ax.grid(alpha=0.3)
    fig.suptitle("Quality against training time (lower FID is better)")
    return _save(fig, out_dir, "quality_vs_train_time")


CURVE_PREFERENCE = [("curve_fid", "mnist-lenet"), ("curve_fid", "inception-v3-tf")]


def curve_quality(records: pd.DataFrame) -> tuple[str, str] | None:
    """The (curve metric, extractor) drawn by ``quality_curves``: LeNet FID, else Inception FID, else the
    first curve metric recorded (spreads such as curve_kid_std excepted)."""
    curves = records[records["metric"].map(metrics_info.kind) == "curve"]
    present = set(zip(curves["metric"], curves["extractor"]))
    for pair in CURVE_PREFERENCE:
        if pair in present:
            return pair
    return next((p for p in sorted(present) if not p[0].endswith("_std")), None)


def quality_curves(records: pd.DataFrame, out_dir: Path) -> Path | None:
    """Quality during training: every model's curve points against training time, one panel per dataset,
    one line per job (seeds share their model's colour), the suite's targets as dashed lines."""
    pair = curve_quality(records)
    if pair is None:
        return None
    metric, extractor = pair
    done = records[records["status"] == "done"]
    points = done[(done["metric"] == metric) & (done["extractor"] == extractor) & done["train_time"].notna()]
    base = metric.removeprefix(metrics_info.CURVE_PREFIX)
    colours = model_colours(records["model"])
    datasets = sorted(points["dataset"].unique())
    fig = Figure(layout="constrained", figsize=(6.5 * len(datasets), 4.5))
    for i, dataset in enumerate(datasets):
        ax = fig.add_subplot(1, len(datasets), i + 1)
        part = points[points["dataset"] == dataset]
        for model, model_points in part.groupby("model", sort=True):
            for j, (_, line) in enumerate(model_points.groupby(["run_id", "seed"], sort=True)):
                line = line.sort_values("train_steps")
                ax.plot(line["train_time"], line["value"], marker="o", markersize=3, color=colours[model],
                        label=model if j == 0 else None)
        targets = done[(done["dataset"] == dataset) & done["metric"].str.startswith(f"{metrics_info.TIME_TO_PREFIX}{base}@")
                       & (done["extractor"] == extractor)]
        levels = sorted({metrics_info.time_to_target(m) for m in targets["metric"]})
        for target in levels:
            ax.axhline(target, color="0.4", linestyle="--", linewidth=0.8)
            ax.annotate(f"{base} = {target:g}", (1, target), xycoords=("axes fraction", "data"), fontsize=7,
                        ha="right", va="bottom", color="0.3")
        shown = [v for v in [*part["value"], *levels] if v > 0]
        if shown and max(shown) > 5 * min(shown):  # FIDs fall by orders of magnitude while training
            ax.set_yscale("log")
        ax.set_xlim(left=0)
        ax.set(xlabel="training time (s, evaluations excluded)", ylabel=f"{base} [{extractor}]", title=dataset)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"{base} during training (each line one seed; n = {_counts(points)} samples per point)")
    return _save(fig, out_dir, "quality_curves")


def _counts(points: pd.DataFrame) -> str:
    return "/".join(str(int(n)) for n in sorted(points["n_samples"].dropna().unique())) or "?"


def quality_vs_sampling_cost(summary: pd.DataFrame, out_dir: Path) -> Path | None:
    """Diffusion samplers at several step counts: quality against NFE and against sampling images/s."""
    quality = headline_quality(summary)
    diffusion = summary[summary["family"] == "diffusion"]
    if quality is None or diffusion.empty:
        return None
    q = _metric(diffusion, *quality).set_index(["dataset", "model", "variant"])
    costs = {c: _metric(diffusion, c).set_index(["dataset", "model", "variant"])["mean"] for c in ("nfe", "sample_throughput")}
    frame = q[["mean", "std"]].assign(**costs).dropna(subset=["nfe", "sample_throughput"], how="all").reset_index()
    if frame.empty:
        return None
    colours = model_colours(summary["model"])
    fig = Figure(layout="constrained", figsize=(11, 4.2))
    for i, (cost, label) in enumerate((("nfe", "network evaluations per sample (NFE)"),
                                        ("sample_throughput", "sampling throughput (images/s)"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for (dataset, model), line in frame.dropna(subset=[cost]).groupby(["dataset", "model"]):
            line = line.sort_values(cost)
            ax.errorbar(line[cost], line["mean"], yerr=line["std"].fillna(0), marker="o", capsize=3,
                        color=colours[model], label=f"{model} / {dataset}")
            for _, r in line.iterrows():
                ax.annotate(r["variant"], (r[cost], r["mean"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set(xlabel=label, ylabel=f"{quality[0]} [{quality[1]}]")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("Diffusion samplers: quality against sampling cost")
    return _save(fig, out_dir, "quality_vs_sampling_cost")


def throughput(summary: pd.DataFrame, out_dir: Path) -> Path | None:
    """Training and sampling throughput per model (mean with std over seeds as error bars)."""
    panels = [(m, t) for m, t in (("train_throughput", "training (images/s)"), ("sample_throughput", "sampling (images/s)"))
              if not _metric(summary, m).empty]
    if not panels:
        return None
    height = max(len(_metric(summary, m)) for m, _ in panels)
    fig = Figure(layout="constrained", figsize=(6 * len(panels), 1.2 + 0.28 * height))
    for i, (metric, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        part = _metric(summary, metric)
        labels = [f"{row_label(m, v)} / {d}" for m, v, d in zip(part["model"], part["variant"], part["dataset"])]
        ax.barh(labels, part["mean"], xerr=part["std"].fillna(0), capsize=3,
                color=["0.6" if m in REFERENCE_ROLES else "C0" for m in part["model"]])
        ax.invert_yaxis()
        if part["mean"].max() > 50 * part["mean"].min() > 0:  # bars from zero unless the range needs a log axis
            ax.set_xscale("log")
        ax.set(xlabel=title)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3, axis="x", which="both")
    fig.suptitle("Throughput per model")
    return _save(fig, out_dir, "throughput")


def sample_grid_paths(run: Run) -> list[tuple[str, Path]]:
    """(label, png) of each done job's sample grid at its lowest seed, in record order."""
    done = run.records[run.records["status"] == "done"]
    jobs = done.drop_duplicates(["model", "variant", "dataset"])
    found = []
    for d in ([run.path] if (run.path / "samples").is_dir() else [p.parent for p in run.path.glob("*/samples")]):
        for _, job in jobs.iterrows():
            stem = f"{job['model']}-{job['variant']}" if job["variant"] else job["model"]
            seeds = sorted(done[(done["model"] == job["model"]) & (done["variant"] == job["variant"])
                                & (done["dataset"] == job["dataset"])]["seed"].dropna().unique())
            for seed in seeds:
                png = d / "samples" / f"{stem}-{job['dataset']}-s{int(seed)}.png"
                if png.is_file():
                    found.append((f"{row_label(job['model'], job['variant'])}\n{job['dataset']}, seed {int(seed)}", png))
                    break
    return found


def sample_grids(runs: list[Run], out_dir: Path, columns: int = 4) -> Path | None:
    """The sample grids of every model side by side (PNG; the SVG embeds the same raster)."""
    grids = [g for run in runs for g in sample_grid_paths(run)]
    if not grids:
        return None
    rows = -(-len(grids) // columns)
    fig = Figure(layout="constrained", figsize=(3 * min(columns, len(grids)), 3.3 * rows))
    for i, (label, png) in enumerate(grids):
        ax = fig.add_subplot(rows, min(columns, len(grids)), i + 1)
        image = matplotlib.image.imread(png)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    fig.suptitle("Samples (the first 64 of each job, 8 to a row)")
    return _save(fig, out_dir, "samples")


def _err(std: float) -> float | None:
    return None if pd.isna(std) else std
