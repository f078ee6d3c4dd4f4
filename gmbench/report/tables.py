"""Result tables: records -> mean ± std over seeds per (model, variant), best values marked.

Pure functions on DataFrames; the renderers in ``render.py`` only format what these return.
Only jobs with status "done" enter the tables; failed and diverged jobs are listed apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gmbench.report import metrics_info, published
from gmbench.report.fmt import mean_std, number, time_to_cell

ROW = ["dataset", "family", "model", "variant"]
CELL = ["metric", "extractor"]
REFERENCE_ROLES = {"real-data": "floor", "pca-gaussian": "baseline"}
FAMILY_ORDER = {"gan": 0, "vae": 1, "diffusion": 2, "other": 3}
PUBLISHED_COLUMN = f"{published.METRIC} [{published.EXTRACTOR}] published"


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Long summary: one row per (dataset, family, model, variant, metric, extractor) over done seeds.

    Columns: ... unit, higher_is_better, mean, std (sample std, ddof=1; NaN for one seed), n_seeds (the
    number of values: seeds, times runs where several runs hold the same model), n_finite (values that
    are finite: for ``time_to_*`` rows the seeds that reached the target; the mean is +inf when one did
    not), reference (the row's role: "floor", "baseline" or ""), best (best non-reference value of its
    column). Curve points (``curve_*``, many per job) are not summarised: ``quality_curves`` draws them.
    """
    done = records[(records["status"] == "done") & records["value"].notna()]
    done = done[done["metric"].map(metrics_info.kind) != "curve"]
    summary = (done.groupby(ROW + CELL, dropna=False, sort=False)
               .agg(unit=("unit", "first"), higher_is_better=("higher_is_better", "first"),
                    mean=("value", "mean"), std=("value", "std"), n_seeds=("value", "count"),
                    n_finite=("value", lambda v: int(np.isfinite(v.to_numpy(dtype=float)).sum())))
               .reset_index())
    summary["reference"] = summary["model"].map(REFERENCE_ROLES).fillna("")
    summary["best"] = _best_marks(summary)
    order = summary.assign(
        _ref=summary["reference"] != "", _fam=summary["family"].map(FAMILY_ORDER).fillna(len(FAMILY_ORDER)),
        _metric=summary["metric"].map(metrics_info.order_key))
    order = order.sort_values(["dataset", "_ref", "_fam", "model", "variant", "_metric", "extractor"])
    return summary.loc[order.index].reset_index(drop=True)


def _best_marks(summary: pd.DataFrame) -> pd.Series:
    """True where a row holds the best mean of its (dataset, metric, extractor) column among measured models
    (a time_to_* target that some seed did not reach, mean +inf, is never best)."""
    gated = summary["metric"].map(metrics_info.kind).isin(["quality", "performance", "time_to_quality"])
    eligible = (gated & (summary["reference"] == "") & summary["higher_is_better"].notna()
                & np.isfinite(summary["mean"].to_numpy(dtype=float)))
    best = pd.Series(False, index=summary.index)
    for _, group in summary[eligible].groupby(["dataset", "metric", "extractor"], dropna=False):
        higher = bool(group["higher_is_better"].iloc[0])
        target = group["mean"].max() if higher else group["mean"].min()
        best[group.index[np.isclose(group["mean"], target, rtol=1e-12, atol=0)]] = True
    return best


def failed_jobs(records: pd.DataFrame) -> pd.DataFrame:
    """One row per job whose status is not "done"."""
    bad = records[records["status"] != "done"]
    return bad[["dataset", "model", "variant", "seed", "status"]].drop_duplicates().reset_index(drop=True)


def column_label(metric: str, extractor: str, unit: str) -> str:
    label = f"{metric} [{extractor}]" if extractor else metric
    return f"{label} ({unit})" if unit else label


def row_label(model: str, variant: str) -> str:
    label = f"{model} ({variant})" if variant else model
    role = REFERENCE_ROLES.get(model)
    return f"{label} — {role}" if role else label


def _cell(metric: str, mean: float, std: float, n: int, n_finite: int, shown_n: int | None) -> str:
    kind = metrics_info.kind(metric)
    if kind == "setting":
        return number(mean)
    if kind == "time_to_quality":
        return time_to_cell(mean, std, n, n_finite, shown_n)
    return mean_std(mean, std, shown_n)


# A dataset's table is shown in two parts, so that neither runs off a page: what the samples score, and
# what producing them cost (metric kinds in each). The "seeds" column is in both, "family" in the first.
PARTS = {"quality": ("quality", "time_to_quality"), "speed and cost": ("performance", "setting")}
PART_OF_KIND = {kind: part for part, kinds in PARTS.items() for kind in kinds}
PART_LABELS = {"quality": ("family", "seeds"), "speed and cost": ("seeds",)}


@dataclass(frozen=True)
class DatasetTable:
    """One dataset's table as cell strings, with the best cells marked and the published column apart."""

    dataset: str
    text: pd.DataFrame  # index: row labels; columns: "family", "seeds", metric columns, maybe PUBLISHED_COLUMN
    best: pd.DataFrame  # same shape, bool
    published_column: str | None
    parts: dict[str, str]  # metric column -> its part (a key of PARTS); the published column is "quality"

    def part(self, name: str) -> DatasetTable:
        """The label columns (PART_LABELS) and the metric columns of one part (a key of PARTS), in table order."""
        columns = [c for c in self.text.columns if c in PART_LABELS[name] or self.parts.get(c) == name]
        published_column = self.published_column if self.published_column in columns else None
        return DatasetTable(self.dataset, self.text[columns], self.best[columns], published_column,
                            {c: p for c, p in self.parts.items() if p == name})

    def split(self) -> dict[str, DatasetTable]:
        """The parts that have a metric column, by name, in PARTS order."""
        return {name: self.part(name) for name in PARTS if name in self.parts.values()}


def dataset_table(summary: pd.DataFrame, dataset: str) -> DatasetTable:
    """The wide table of one dataset (spreads such as kid_std stay in the CSV, not in this table)."""
    part = summary[(summary["dataset"] == dataset) & (summary["metric"].map(metrics_info.kind) != "spread")].copy()
    part["row"] = [row_label(m, v) for m, v in zip(part["model"], part["variant"])]
    part["column"] = [column_label(m, e, u) for m, e, u in zip(part["metric"], part["extractor"], part["unit"])]
    seeds = part[part["metric"].map(metrics_info.kind) != "setting"].groupby("row")["n_seeds"].agg(lambda n: set(n))
    shared = {row: next(iter(n)) for row, n in seeds.items() if len(n) == 1}  # rows whose cells share one seed count
    part["cell"] = [_cell(k, m, s, n, f, None if row in shared else n) for row, k, m, s, n, f in
                    zip(part["row"], part["metric"], part["mean"], part["std"], part["n_seeds"], part["n_finite"])]
    rows = list(dict.fromkeys(part["row"]))
    ordered = sorted(set(zip(part["metric"], part["extractor"], part["column"])),
                     key=lambda t: (metrics_info.order_key(t[0]), t[1]))
    columns = list(dict.fromkeys(column for _, _, column in ordered))
    parts = {column: PART_OF_KIND[metrics_info.kind(metric)] for metric, _, column in ordered}
    text = part.pivot(index="row", columns="column", values="cell").reindex(index=rows, columns=columns).fillna("")
    best = part.pivot(index="row", columns="column", values="best").reindex(index=rows, columns=columns)
    best = best.astype("boolean").fillna(False).astype(bool)
    families = part.drop_duplicates("row").set_index("row")["family"]
    text.insert(0, "family", families.reindex(rows))
    text.insert(1, "seeds", [str(int(shared[r])) if r in shared else "varies (n in cells)" for r in rows])
    best.insert(0, "family", False)
    best.insert(1, "seeds", False)
    published_column = _insert_published(text, best, part, dataset)
    if published_column:
        parts[published_column] = "quality"
    text.index.name = best.index.name = "model"
    text.columns.name = best.columns.name = None
    return DatasetTable(dataset, text, best, published_column, parts)


def _insert_published(text: pd.DataFrame, best: pd.DataFrame, part: pd.DataFrame, dataset: str) -> str | None:
    """Add the published-FID column right after the Inception FID column (or at the end), in place."""
    if dataset != published.DATASET:
        return None
    models = part.drop_duplicates("row").set_index("row")["model"]
    cells = []
    for row in text.index:
        score = published.published_for(models[row])
        cells.append(f"{score.mean:g} ± {score.std:g} ({score.source}, {score.model})" if score else "")
    if not any(cells):
        return None
    inception = [c for c in text.columns if c.startswith(f"{published.METRIC} [{published.EXTRACTOR}]")]
    position = text.columns.get_loc(inception[0]) + 1 if inception else len(text.columns)
    text.insert(position, PUBLISHED_COLUMN, cells)
    best.insert(position, PUBLISHED_COLUMN, False)
    return PUBLISHED_COLUMN


def provenance(records: pd.DataFrame, manifests: list[dict], dataset: str) -> list[str]:
    """Lines naming how the dataset's numbers were made: extractors and weights, samples, device, versions."""
    part = records[(records["dataset"] == dataset) & (records["status"] == "done")]
    kinds = part["metric"].map(metrics_info.kind)
    quality = part[(part["extractor"].fillna("") != "") & ~kinds.isin(["curve", "time_to_quality"])]
    lines = []
    for (extractor, sha), group in quality.groupby(["extractor", "extractor_sha256"], dropna=False):
        counts = ", ".join(str(int(n)) for n in sorted(group["n_samples"].dropna().unique()))
        lines.append(f"extractor {extractor}, weights sha256 {sha or 'unknown'}, samples per score {counts or 'unknown'}")
    curves = part[kinds == "curve"]
    for (metric, extractor, sha), group in curves.groupby(["metric", "extractor", "extractor_sha256"], dropna=False):
        counts = ", ".join(str(int(n)) for n in sorted(group["n_samples"].dropna().unique()))
        lines.append(f"quality curve {metric} (and time_to_* targets): extractor {extractor}, weights sha256 "
                     f"{sha or 'unknown'}, samples per point {counts or 'unknown'}, "
                     f"{group.groupby(['run_id', 'model', 'seed']).ngroups} jobs")
    hosts = sorted(set(part["host"].dropna()) - {""})  # empty in records written before the column existed
    speeds = sorted(set(part["speed"].dropna()) - {""})
    parallel = part[part["world_size"].fillna(1) > 1].groupby("model")["world_size"].max()
    lines.append("device " + ", ".join(sorted(set(part["device"].dropna()))) +
                 "; dtype " + ", ".join(sorted(set(part["dtype"].dropna()))) +
                 (f"; speed options {', '.join(speeds)}" if speeds else "") +
                 (f"; host{'s' if len(hosts) > 1 else ''} " + ", ".join(hosts) if hosts else "") +
                 "".join(f"; {model} trained data-parallel over {int(n)} ranks" for model, n in parallel.items()))
    run_ids = set(part["run_id"].dropna())
    for m in manifests:
        if m.get("run_id") in run_ids or not run_ids:
            lines.append(
                f"run {m.get('run_id', '?')}: gmbench {m.get('gmbench_version', '?')}, commit {m.get('git_commit', '?')}, "
                f"python {m.get('python', '?')}, torch {m.get('torch', '?')}, cuda {m.get('cuda') or 'none'}, "
                f"{m.get('device_name') or m.get('device', '?')}, started {m.get('started', '?')}" + _peak_note(m))
    missing = sorted(run_ids - {m.get("run_id") for m in manifests})
    if missing:
        lines.append(f"no manifest for run(s) {', '.join(missing)}: versions and commit unknown")
    return lines


def _peak_note(manifest: dict) -> str:
    """", measured peak fp32 1.5e+11 FLOP/s" (the MFU columns' denominators), or "" for runs without one."""
    peaks = manifest.get("peak_flops") or {}
    shown = ", ".join(f"{dtype} {value:.3g}" for dtype, value in sorted(peaks.items()))
    return f", measured peak {shown} FLOP/s" if shown else ""
