"""Regression comparison of two runs: which measured quantities got worse beyond tolerance and noise.

Rows are matched on ``KEY`` = (model, variant, dataset, metric, extractor). The extractor is part
of the key because one run may score the same metric on two tracks (LeNet and Inception FID are
different quantities). The settings that make two numbers comparable (``PROVENANCE``: extractor
weights, sample count, device, dtype) are deliberately *not* in the key: a row whose provenance
differs would otherwise appear as two unrelated one-sided rows; instead it is matched and marked
"not comparable", which says what changed. Performance rows are also not comparable when the
manifests name different hardware (``device_name``), and quality scores and training time are not
comparable when the model was trained for a different number of steps (``train_steps``), as
between suites of different budgets; per-step rates (throughput, step time, memory) still are.

A row regresses when it is worse than its tolerance (relative %) *and*, where both sides have
at least two seeds, Welch's t-test rejects equal means at ``ALPHA``; with one seed only the
tolerance applies. Only rows of jobs with status "done" are compared. A seed done in the baseline
that failed, diverged or is missing in the current run is lost (``seeds_not_done``): every row of
its model and dataset is "failed", a regression, since the other seeds' mean would hide it.
``allow_missing_seeds`` judges those rows on the seeds left instead, unless no seed is left. When
the suites differ, a model the current run does not run at all loses no seeds: its rows are one-sided.

``time_to_<metric>@X`` rows (training seconds to reach a quality target, +inf when not reached) are
gated like performance: first by how many seeds reached X (fewer in the current run is a regression,
more an improvement, none on either side is unchanged), then, with the same count, by the times of
the seeds that did, with the usual tolerance and test. Quality-curve points (``curve_*``) are not
compared: ``time_to_*`` sums them up.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import stats

from gmbench.errors import GmbenchError
from gmbench.report import metrics_info
from gmbench.report.fmt import markdown_table, mean_std, number, percent, time_to_cell
from gmbench.report.runs import Run

KEY = ["model", "variant", "dataset", "metric", "extractor"]
PROVENANCE = ["extractor_sha256", "n_samples", "device", "dtype"]
ALPHA = 0.05
GATING = ("regression", "failed")
VERDICT_ORDER = [
    "regression", "failed", "improvement", "within noise", "unchanged", "changed", "not comparable",
    "baseline only", "current only",
]


def parse_tolerances(items: list[str] | None, known_metrics: set[str]) -> dict[str, float]:
    """``["fid=3", "train_throughput=15%"]`` -> {"fid": 3.0, ...} (percent); bad items raise GmbenchError."""
    tolerances = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        try:
            value = float(raw.strip().rstrip("%")) if sep else float("nan")
        except ValueError:
            value = float("nan")
        if not sep or not np.isfinite(value) or value < 0:
            raise GmbenchError(f"--tolerance {item!r}: expected METRIC=PERCENT with a non-negative number, e.g. fid=3.")
        if name not in known_metrics:
            raise GmbenchError(f"--tolerance {item!r}: no metric {name!r} in either run; metrics present: "
                               f"{', '.join(sorted(known_metrics))}.")
        tolerances[name] = value
    return tolerances


def tolerance_for(metric: str, overrides: dict[str, float]) -> float:
    if metric in overrides:
        return overrides[metric]
    return metrics_info.DEFAULT_TOLERANCE_PCT.get(metrics_info.kind(metric), float("nan"))


def _side(records: pd.DataFrame) -> pd.DataFrame:
    """Done rows aggregated per KEY: seed values, mean, std, n and the provenance seen."""
    done = records[(records["status"] == "done") & records["value"].notna()].copy()
    done = done[done["metric"].map(metrics_info.kind) != "curve"]
    for col in PROVENANCE:
        done[col] = done[col].astype("string").fillna("")
    grouped = done.groupby(KEY, dropna=False, sort=True)
    side = grouped.agg(
        values=("value", lambda v: tuple(v.dropna())),
        unit=("unit", "first"),
        higher_is_better=("higher_is_better", "first"),
        **{col: (col, lambda v: "/".join(sorted(set(v)))) for col in PROVENANCE},
    )
    steps = done[done["metric"] == "train_steps"].groupby(["model", "dataset"])["value"].mean()
    side["train_steps"] = [steps.get((model, dataset), np.nan) for model, _, dataset, _, _ in side.index]
    return side


def _seed_status(records: pd.DataFrame) -> pd.Series:
    """(model, dataset, seed) -> "done", or the status of a row that is not done (failed, diverged)."""
    return records.groupby(["model", "dataset", "seed"])["status"].agg(
        lambda s: next((x for x in s if x != "done"), "done"))


def seeds_not_done(baseline: Run, current: Run) -> pd.DataFrame:
    """Seeds not done in the current run, per model, dataset, status and baseline status (status "missing"
    where the current run has no row of the seed); ``lost`` where the baseline's seeds were done."""
    before, after = _seed_status(baseline.records), _seed_status(current.records)
    ran = set(zip(current.records["model"], current.records["dataset"]))
    same_suites = not suites_note(baseline, current)
    rows = []
    for model, dataset, seed in before.index.union(after.index):
        now, was = after.get((model, dataset, seed), "missing"), before.get((model, dataset, seed), "absent")
        expected = was == "done" and (same_suites or (model, dataset) in ran)  # only then is a missing seed listed
        if now != "done" and (now != "missing" or expected):
            rows.append({"model": model, "dataset": dataset, "seed": seed, "status": now, "baseline": was})
    frame = pd.DataFrame(rows, columns=["model", "dataset", "seed", "status", "baseline"])
    grouped = frame.groupby(["model", "dataset", "status", "baseline"], sort=True)["seed"]
    table = grouped.agg(lambda s: ", ".join(str(int(x)) for x in sorted(s))).rename("seeds").reset_index()
    return table[["model", "dataset", "seeds", "status", "baseline"]].assign(lost=table["baseline"] == "done")


def _lost_notes(baseline: Run, current: Run) -> dict[tuple[str, str], str]:
    """(model, dataset) -> "seed 1 failed; seeds 2, 3 missing in the current run" for seeds done in the baseline."""
    lost = seeds_not_done(baseline, current)
    lost = lost[lost["lost"]]
    notes: dict[tuple[str, str], list[str]] = {}
    for model, dataset, seeds, status in lost[["model", "dataset", "seeds", "status"]].itertuples(index=False):
        notes.setdefault((model, dataset), []).append(f"seed{'s' if ',' in seeds else ''} {seeds} {status}")
    return {job: "; ".join(parts) + " in the current run" for job, parts in notes.items()}


def welch_p(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Two-sided Welch t-test p-value; NaN with fewer than 2 values a side; 0/1 when both sides are constant."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if min(a) == max(a) and min(b) == max(b):  # constant sides (np.var of equal floats can be 3e-33, not 0)
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _provenance_note(base: pd.Series, cur: pd.Series, base_hw: str, cur_hw: str, metric: str) -> str:
    """What differs between the two sides' settings for this row ("" when comparable)."""
    kind = metrics_info.kind(metric)
    diffs = [f"{col} {base[col] or '-'} vs {cur[col] or '-'}" for col in PROVENANCE if base[col] != cur[col]]
    if kind in ("performance", "time_to_quality") and base_hw and cur_hw and base_hw != cur_hw:
        diffs.append(f"hardware {base_hw} vs {cur_hw}")
    steps_matter = kind == "quality" or metric == "train_time"
    if steps_matter and pd.notna(base["train_steps"]) and pd.notna(cur["train_steps"]) \
            and base["train_steps"] != cur["train_steps"]:
        diffs.append(f"train_steps {number(base['train_steps'])} vs {number(cur['train_steps'])}")
    return "; ".join(diffs)


def _judge(base: pd.Series, cur: pd.Series, metric: str, tolerances: dict[str, float],
           base_hw: str, cur_hw: str) -> dict:
    """Verdict of one matched row."""
    if metrics_info.kind(metric) == "time_to_quality":
        judged = _judge_time_to(base, cur, metric, tolerances)
    else:
        judged = _judge_values(base["values"], cur["values"], base["higher_is_better"], metric, tolerances)
    note = _provenance_note(base, cur, base_hw, cur_hw, metric)
    return judged | {"verdict": "not comparable", "note": note} if note else judged


def _judge_time_to(base: pd.Series, cur: pd.Series, metric: str, tolerances: dict[str, float]) -> dict:
    """A time to reach a quality target: the share of seeds that reached it decides first; with the same
    share, the times of those seeds are judged like any performance number."""
    a = tuple(v for v in base["values"] if np.isfinite(v))
    b = tuple(v for v in cur["values"] if np.isfinite(v))
    share_a, share_b = len(a) / len(base["values"]), len(b) / len(cur["values"])
    row = {"change_pct": np.nan, "p_value": np.nan, "tolerance_pct": tolerance_for(metric, tolerances)}
    if share_a == share_b == 0:
        return row | {"direction": "same", "verdict": "unchanged", "note": "not reached in either run"}
    if share_b < share_a:
        return row | {"direction": "worse", "verdict": "regression",
                      "note": f"reached by {len(b)} of {len(cur['values'])} seeds, was {len(a)} of {len(base['values'])}"}
    if share_b > share_a:
        return row | {"direction": "better", "verdict": "improvement",
                      "note": f"reached by {len(b)} of {len(cur['values'])} seeds, was {len(a)} of {len(base['values'])}"}
    judged = _judge_values(a, b, False, metric, tolerances)
    if share_a < 1:
        judged["note"] = "; ".join(n for n in (judged["note"], "times of the seeds that reached it") if n)
    return judged


def _judge_values(a: tuple[float, ...], b: tuple[float, ...], hib, metric: str, tolerances: dict[str, float]) -> dict:
    """Verdict of two sides' values of a comparable row."""
    kind = metrics_info.kind(metric)
    mean_a, mean_b = float(np.mean(a)), float(np.mean(b))
    change = ((mean_b - mean_a) / abs(mean_a) * 100.0) if mean_a != 0 else (0.0 if mean_b == 0 else np.sign(mean_b) * np.inf)
    direction = "same" if mean_a == mean_b else ("changed" if pd.isna(hib) else
                                               ("better" if (mean_b > mean_a) == bool(hib) else "worse"))
    row = {"change_pct": change, "direction": direction, "p_value": welch_p(a, b),
           "tolerance_pct": tolerance_for(metric, tolerances), "note": ""}
    if kind in ("setting", "spread") or direction == "changed":
        return row | {"verdict": "unchanged" if np.isclose(mean_a, mean_b) else "changed", "tolerance_pct": float("nan")}
    if direction == "same" or abs(change) <= row["tolerance_pct"]:
        return row | {"verdict": "unchanged"}
    if row["p_value"] >= ALPHA:
        return row | {"verdict": "within noise", "note": f"Welch p={row['p_value']:.2g} >= {ALPHA}"}
    return row | {"verdict": "regression" if direction == "worse" else "improvement"}


def _hardware(run: Run) -> str:
    return "/".join(run.manifest_values("device_name"))


def compare_runs(baseline: Run, current: Run, tolerances: dict[str, float] | None = None,
                 allow_missing_seeds: bool = False) -> pd.DataFrame:
    """One row per KEY present on either side, with both sides' statistics and a verdict (see the module notes
    for lost seeds and ``allow_missing_seeds``)."""
    tolerances = tolerances or {}
    base, cur = _side(baseline.records), _side(current.records)
    lost = _lost_notes(baseline, current)  # a lost training loses every sampler variant
    base_hw, cur_hw = _hardware(baseline), _hardware(current)
    rows = []
    for key in base.index.union(cur.index):
        row = dict(zip(KEY, key))
        in_base, in_cur = key in base.index, key in cur.index
        for prefix, side, present in (("baseline", base, in_base), ("current", cur, in_cur)):
            vals = side.loc[key, "values"] if present else ()
            finite = bool(vals) and bool(np.isfinite(vals).all())
            row[prefix] = float(np.mean(vals)) if vals else np.nan  # +inf: a time_to_* target some seed missed
            row[f"{prefix}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 and finite else np.nan
            row[f"{prefix}_n"] = len(vals)
            row[f"{prefix}_n_finite"] = int(np.isfinite(vals).sum()) if vals else 0
        row["unit"] = (base if in_base else cur).loc[key, "unit"]
        row["kind"] = metrics_info.kind(row["metric"])
        job_lost = lost.get((row["model"], row["dataset"]))
        if in_base and in_cur:
            row |= _judge(base.loc[key], cur.loc[key], row["metric"], tolerances, base_hw, cur_hw)
            if job_lost and allow_missing_seeds:
                row["note"] = "; ".join(n for n in (row["note"], job_lost + ", allowed") if n)
            elif job_lost:
                row |= {"verdict": "failed", "note": job_lost}
        elif in_base and job_lost:
            row |= {"verdict": "failed", "note": job_lost}
        else:
            row |= {"verdict": "baseline only" if in_base else "current only"}
        rows.append(row)
    columns = KEY + ["unit", "kind", "baseline", "baseline_std", "baseline_n", "baseline_n_finite", "current",
                     "current_std", "current_n", "current_n_finite", "change_pct", "direction", "tolerance_pct", "p_value", "verdict", "note"]
    return pd.DataFrame(rows, columns=columns)


def summary_counts(table: pd.DataFrame) -> dict[str, int]:
    counts = table["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICT_ORDER}


def has_regression(table: pd.DataFrame) -> bool:
    return bool(table["verdict"].isin(GATING).any())


def suites_note(baseline: Run, current: Run) -> str:
    """A sentence when the two runs come from different suites, else ""."""
    a = sorted(set(baseline.records["suite"].dropna()))
    b = sorted(set(current.records["suite"].dropna()))
    if a == b:
        return ""
    return (f"The runs come from different suites (baseline {', '.join(a)}; current {', '.join(b)}): "
            "only rows present in both are compared, the others are listed as one-sided.")


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable columns of a comparison table."""
    shown = pd.DataFrame({
        "model": table["model"],
        "variant": table["variant"],
        "dataset": table["dataset"],
        "metric": table["metric"] + table["extractor"].map(lambda e: f" [{e}]" if e else ""),
        "baseline": _cells(table, "baseline"),
        "current": _cells(table, "current"),
        "change": table["change_pct"].map(percent),
        "direction": table["direction"].fillna(""),
        "tolerance": table["tolerance_pct"].map(lambda t: "" if pd.isna(t) else f"{number(t)}%"),
        "p (Welch)": table["p_value"].map(lambda p: "" if pd.isna(p) else f"{p:.2g}"),
        "verdict": table["verdict"],
        "note": table["note"].fillna(""),
    })
    return shown


def _cells(table: pd.DataFrame, side: str) -> list[str]:
    """One side's "mean ± std (n=k)" cells; time_to_* rows say "not reached" where seeds missed the target."""
    return [("" if not n else time_to_cell(m, s, n, f, n) if kind == "time_to_quality" else mean_std(m, s, n))
            for kind, m, s, n, f in zip(table["kind"], table[side], table[f"{side}_std"], table[f"{side}_n"],
                                        table[f"{side}_n_finite"])]


def _header_line(name: str, run: Run) -> str:
    suites = ", ".join(sorted(set(run.records["suite"].dropna()))) or "-"
    commits = ", ".join(c[:10] for c in run.manifest_values("git_commit")) or "-"
    hardware = _hardware(run) or "-"
    return f"- {name}: `{run.label}` (suite {suites}; commit {commits}; hardware {hardware})"


def to_markdown(table: pd.DataFrame, baseline: Run, current: Run, tolerances: dict[str, float],
                allow_missing_seeds: bool = False) -> str:
    """A Markdown summary for a CI log or a pull-request comment."""
    counts = summary_counts(table)
    gate = counts["regression"] + counts["failed"]
    headline = f"**{gate} regression{'s' if gate != 1 else ''}**" if gate else "**no regression**"
    lines = ["## gmbench compare", "", _header_line("baseline", baseline), _header_line("current", current), "",
             headline + " — " + ", ".join(f"{n} {v}" for v, n in counts.items() if n), ""]
    if note := suites_note(baseline, current):
        lines += [note, ""]
    overrides = ", ".join(f"{m}={number(t)}%" for m, t in sorted(tolerances.items()))
    lines += [f"A row regresses when it is worse than its tolerance (performance "
              f"{number(metrics_info.DEFAULT_TOLERANCE_PCT['performance'])}%, quality "
              f"{number(metrics_info.DEFAULT_TOLERANCE_PCT['quality'])}%, time to a quality target "
              f"{number(metrics_info.DEFAULT_TOLERANCE_PCT['time_to_quality'])}%"
              + (f"; overrides {overrides}" if overrides else "")
              + f") and, with at least two seeds on both sides, Welch's t-test gives p < {ALPHA}. "
              "Params, NFE, FLOPs per image, step counts and within-run spreads are reported, never gated. A quality "
              "target (time_to_*) reached in fewer seeds than in the baseline is a regression.", ""]
    shown = _display(table)
    sections = [
        ("Regressions", ["regression", "failed"]), ("Improvements", ["improvement"]),
        ("Not comparable", ["not comparable"]), ("Only in the baseline", ["baseline only"]),
        ("Only in the current run", ["current only"]), ("Within seed noise", ["within noise"]),
        ("Settings changed", ["changed"]),
    ]
    for title, verdicts in sections:
        part = shown[table["verdict"].isin(verdicts)]
        if len(part):
            lines += [f"### {title} ({len(part)})", "", markdown_table(part), ""]
    not_done = seeds_not_done(baseline, current)
    if len(not_done):
        lines += [f"### Seeds not done in the current run ({len(not_done)})", "",
                  "A seed done in the baseline is lost: its model's rows are `failed`"
                  + (", allowed by --allow-missing-seeds." if allow_missing_seeds else "."), "",
                  markdown_table(not_done.astype("string")), ""]
    lines += [f"<details><summary>All {len(table)} rows</summary>", "", markdown_table(shown), "", "</details>", ""]
    return "\n".join(lines)


def to_json(table: pd.DataFrame, baseline: Run, current: Run, tolerances: dict[str, float],
            allow_missing_seeds: bool = False) -> str:
    payload = {
        "baseline": baseline.label, "current": current.label,
        "suites_differ": bool(suites_note(baseline, current)),
        "alpha": ALPHA, "tolerance_overrides_pct": tolerances, "allow_missing_seeds": allow_missing_seeds,
        "regressed": has_regression(table), "summary": summary_counts(table),
        "seeds_not_done": seeds_not_done(baseline, current).to_dict("records"),
        "rows": json.loads(table.to_json(orient="records")),
    }
    return json.dumps(payload, indent=2)


def check_comparable_at_all(table: pd.DataFrame, baseline: Run, current: Run) -> None:
    """Raise when the two runs share no row at all: nothing was compared, which is a usage mistake."""
    if not table["verdict"].isin(["baseline only", "current only"]).all():
        return
    raise GmbenchError(
        f"{baseline.label} and {current.label} share no (model, variant, dataset, metric, extractor) row, so "
        f"nothing can be compared. {suites_note(baseline, current)}".strip()
    )
