"""`gmbench report`: tables and figures of one or more runs as Markdown, HTML, LaTeX or CSV.

The HTML report is one self-contained file (CSS inline, figures as base64 PNG) that opens offline.
Markdown and LaTeX reference the figures written beside them under ``figures/`` (PNG and SVG).
"""
from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from gmbench.errors import GmbenchError
from gmbench.io import write_text
from gmbench.report import figures, metrics_info, published, tables
from gmbench.report.fmt import markdown_table
from gmbench.report.runs import Run

FORMATS = ("md", "html", "latex", "csv")
EXTENSIONS = {"md": "md", "html": "html", "latex": "tex", "csv": "csv"}
LEGEND = (
    "Cells: mean ± sample standard deviation over seeds (the seeds column gives their number; a cell says "
    "(n=k) where its row's cells differ). The best measured value of "
    "each quality and cost column is marked in bold; the reference rows are excluded from that: real-data "
    "(real images scored as if generated: the floor) and pca-gaussian (a Gaussian in PCA space: the baseline). "
    "Only jobs that finished are in the tables; failed and diverged jobs are listed apart."
)

PUBLISHED_LEGEND = (
    " The column marked \"published\" holds numbers from the literature for the same model (Lucic et al. 2018; "
    "Dai & Wipf 2019; Inception FID, 10k generated vs 10k test images); they were not measured here."
)

TIME_TO_LEGEND = (
    " Columns time_to_<metric>@X: training seconds (curve evaluations excluded) until the model's quality "
    "curve first reached X; \"not reached\" when it did not within the training budget; the curves are "
    "in the figure \"Quality during training\"."
)


MFU_LEGEND = (
    " Columns *_mfu: model FLOPs utilisation, the throughput times the FLOPs per image (*_flops, counted by "
    "torch's FlopCounterMode: matmuls and convolutions, not elementwise work, so a lower bound) over the "
    "device's measured matmul peak in the job's dtype (peak_flops in the run's manifest)."
)


def legend(summary: pd.DataFrame) -> str:
    """The table legend, with the published, time-to-quality and MFU sentences where the tables have such columns."""
    has_time_to = summary["metric"].map(metrics_info.kind).eq("time_to_quality").any()
    has_mfu = summary["metric"].isin(["train_mfu", "sample_mfu"]).any()
    return (LEGEND + (PUBLISHED_LEGEND if has_published(summary) else "") + (TIME_TO_LEGEND if has_time_to else "")
            + (MFU_LEGEND if has_mfu else ""))


def has_published(summary: pd.DataFrame) -> bool:
    """Whether the runs hold the dataset the published numbers are for (MNIST): the report shows them only then."""
    return published.DATASET in set(summary["dataset"])


def default_out_dir(runs: list[Run]) -> Path:
    first = runs[0].path
    return (first.parent if first.is_file() else first) / "report"


@dataclass(frozen=True)
class ReportInputs:
    """What every format renders: the runs' records, manifests, summary and figure PNGs (made once)."""

    runs: list[Run]
    records: pd.DataFrame
    manifests: list[dict]
    summary: pd.DataFrame
    figures: list[Path]
    out_dir: Path


def gather(runs: list[Run], out_dir: Path, with_figures: bool) -> ReportInputs:
    records = pd.concat([r.records for r in runs], ignore_index=True)
    summary = tables.summarise(records)
    pngs = _figures(runs, records, summary, out_dir) if with_figures else []
    return ReportInputs(runs, records, [m for r in runs for m in r.manifests], summary, pngs, out_dir)


def _marked(table: tables.DatasetTable, escape: Callable[[str], str], bold: Callable[[str], str]) -> pd.DataFrame:
    """The table's cells escaped for a format, best cells wrapped in that format's bold."""
    text = table.text.map(lambda v: escape(str(v)))
    text = text.where(~table.best, text.map(bold))
    text.index = [escape(str(i)) for i in text.index]
    text.columns = [escape(str(c)) for c in text.columns]
    text.index.name = "model"
    return text


def _figures(runs: list[Run], records: pd.DataFrame, summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    fig_dir = out_dir / "figures"
    made = [figures.quality_curves(records, fig_dir), figures.quality_vs_train_time(summary, fig_dir),
            figures.quality_vs_sampling_cost(summary, fig_dir),
            figures.throughput(summary, fig_dir), figures.sample_grids(runs, fig_dir)]
    return [p for p in made if p is not None]


FIGURE_TITLES = {
    "quality_curves": "Quality during training, against training time (time to a target FID)",
    "quality_vs_train_time": "Quality against training time",
    "quality_vs_sampling_cost": "Diffusion samplers: quality against sampling cost (NFE, images/s)",
    "throughput": "Training and sampling throughput",
    "samples": "Sample grids",
}


def _run_lines(runs: list[Run], code: Callable[[str], str]) -> list[str]:
    """One "path (suite name)" per run, the path formatted as code."""
    return [f"{code(r.label)} (suite {', '.join(sorted(set(r.records['suite'].dropna()))) or '-'})" for r in runs]


def render_markdown(inputs: ReportInputs) -> str:
    runs, records, manifests, summary, pngs, out_dir = (inputs.runs, inputs.records, inputs.manifests, inputs.summary,
                                                        inputs.figures, inputs.out_dir)
    lines = ["# gmbench report", "", "Runs: " + "; ".join(_run_lines(runs, lambda p: f"`{p}`")), "", legend(summary), ""]
    for dataset in summary["dataset"].unique():
        lines += [f"## {dataset}", ""]
        for name, table in tables.dataset_table(summary, dataset).split().items():
            shown = _marked(table, lambda s: s, lambda s: f"**{s}**" if s else s).reset_index()
            lines += [f"### {name.capitalize()}", "", markdown_table(shown), ""]
        lines += ["Provenance:", ""]
        lines += [f"- {line}" for line in tables.provenance(records, manifests, dataset)] + [""]
    failed = tables.failed_jobs(records)
    if len(failed):
        lines += ["## Failed or diverged jobs", "", markdown_table(failed.astype("string").fillna("")), ""]
    lines += ["## Figures", ""]
    lines += [f"![{FIGURE_TITLES[p.stem]}]({p.relative_to(out_dir).as_posix()})\n" for p in pngs]
    if has_published(summary):
        lines += ["## Published reference numbers", "", markdown_table(published_table()), ""]
    return "\n".join(lines)


def published_table() -> pd.DataFrame:
    frame = published.published_frame()
    return pd.DataFrame({
        "source": frame["source"], "model (as published)": frame["published_model"],
        "MNIST FID, Inception (published)": [f"{m:g} ± {s:g}" for m, s in zip(frame["mean"], frame["std"])],
        "gmbench models": frame["gmbench_models"],
    })


CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; font-size: 11px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 4px; text-align: right; }
td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f0f0; vertical-align: bottom; }  /* headers wrap ("fid" over "[mnist-lenet]"): wide tables fit the page */
.published { color: #666; font-style: italic; }
td:has(> .published) { white-space: normal; min-width: 14em; }  /* a published cell names its source: let it wrap */
.scroll { overflow-x: auto; }
.provenance { font-size: 12px; color: #444; }
img { max-width: 100%; border: 1px solid #ddd; margin: 6px 0; }
"""


def _breakable(header: str) -> str:
    """An (escaped) header with line-break opportunities after each underscore and slash."""
    return header.replace("_", "_<wbr>").replace("/", "/<wbr>")


def _html_table(frame: pd.DataFrame, published_column: str | None = None) -> str:
    """The frame (cells escaped already) as an HTML table; headers may break after an underscore
    ("sample_peak_memory") or a slash ("FLOP/image"), so a table of many cost columns still fits the page."""
    frame = frame.rename(columns=_breakable)
    out = frame.to_html(escape=False, border=0, index=False)
    if published_column:
        header = _breakable(html.escape(published_column))
        out = out.replace(f"<th>{header}</th>", f'<th class="published">{header}</th>')
    return f'<div class="scroll">{out}</div>'


def render_html(inputs: ReportInputs) -> str:
    runs, records, manifests, summary, pngs = inputs.runs, inputs.records, inputs.manifests, inputs.summary, inputs.figures
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>gmbench report</title>',
             f"<style>{CSS}</style></head><body>", "<h1>gmbench report</h1>",
             "<p>Runs: " + "; ".join(_run_lines(runs, lambda p: f"<code>{html.escape(p)}</code>")) + "</p>",
             f"<p>{html.escape(legend(summary))}</p>"]
    for dataset in summary["dataset"].unique():
        parts.append(f"<h2>{html.escape(dataset)}</h2>")
        for name, table in tables.dataset_table(summary, dataset).split().items():
            shown = _marked(table, html.escape, lambda s: f"<strong>{s}</strong>" if s else s)
            if table.published_column:
                column = html.escape(table.published_column)
                shown[column] = shown[column].map(lambda c: f'<span class="published">{c}</span>' if c else c)
            parts += [f"<h3>{html.escape(name.capitalize())}</h3>", _html_table(shown.reset_index(), table.published_column)]
        provenance = "".join(f"<li>{html.escape(line)}</li>" for line in tables.provenance(records, manifests, dataset))
        parts.append(f'<p class="provenance">Provenance:</p><ul class="provenance">{provenance}</ul>')
    failed = tables.failed_jobs(records)
    if len(failed):
        parts += ["<h2>Failed or diverged jobs</h2>", _html_table(failed.astype("string").fillna("").map(html.escape))]
    parts.append("<h2>Figures</h2>")
    for png in pngs:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts += [f"<h3>{html.escape(FIGURE_TITLES[png.stem])}</h3>",
                  f'<img alt="{html.escape(FIGURE_TITLES[png.stem])}" src="data:image/png;base64,{data}">']
    if has_published(summary):
        parts += ["<h2>Published reference numbers</h2>", _html_table(published_table().map(html.escape))]
    return "\n".join(parts + ["</body></html>"])


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    escaped = "".join(LATEX_SPECIALS.get(c, c) for c in text)
    return escaped.replace("±", r"$\pm$").replace("—", "---")


def render_latex(inputs: ReportInputs) -> str:
    """A standalone LaTeX document (booktabs, graphicx); tables rendered by pandas' Styler.to_latex."""
    records, manifests, summary, pngs, out_dir = (inputs.records, inputs.manifests, inputs.summary, inputs.figures,
                                                  inputs.out_dir)
    parts = [r"\documentclass{article}", r"\usepackage[margin=1.5cm,landscape]{geometry}",
             r"\usepackage{booktabs}", r"\usepackage{graphicx}", r"\begin{document}", r"\section*{gmbench report}",
             latex_escape(legend(summary)), ""]
    for dataset in summary["dataset"].unique():
        provenance = "; ".join(latex_escape(line) for line in tables.provenance(records, manifests, dataset))
        for i, (name, table) in enumerate(tables.dataset_table(summary, dataset).split().items()):
            shown = _marked(table, latex_escape, lambda s: rf"\textbf{{{s}}}" if s else s)
            body = shown.style.to_latex(hrules=True, column_format="l" + "r" * len(shown.columns))
            told = f"Provenance: {provenance}" if i == 0 else "Provenance as in the table before."
            caption = f"{latex_escape(dataset)}, {latex_escape(name)}. {told}"
            parts += [r"\begin{table}[ht]", r"\centering", rf"\caption{{{caption}}}",
                      r"\resizebox{\textwidth}{!}{%", body.strip(), "}", r"\end{table}", ""]
    for png in pngs:
        parts += [r"\begin{figure}[ht]", r"\centering",
                  rf"\includegraphics[width=0.9\textwidth]{{{png.relative_to(out_dir).as_posix()}}}",
                  rf"\caption{{{latex_escape(FIGURE_TITLES[png.stem])}}}", r"\end{figure}", ""]
    parts.append(r"\end{document}")
    return "\n".join(parts)


def render_csv(inputs: ReportInputs) -> str:
    """The long summary (one row per model, variant, dataset, metric, extractor); published and failed
    rows go to ``published.csv`` and ``failed.csv`` beside it."""
    write_text(inputs.out_dir / "published.csv", published.published_frame().to_csv(index=False))
    write_text(inputs.out_dir / "failed.csv", tables.failed_jobs(inputs.records).to_csv(index=False))
    return inputs.summary.to_csv(index=False)


RENDERERS = {"md": render_markdown, "html": render_html, "latex": render_latex, "csv": render_csv}


def write_report(runs: list[Run], formats: list[str], out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Render the runs in each format into ``out_dir`` (default ``<first run>/report``); returns the files.

    Figures (PNG and SVG under ``figures/``) are drawn once, and only for formats that show them.
    """
    unknown = [f for f in formats if f not in RENDERERS]
    if unknown:
        raise GmbenchError(f"Unknown report format {unknown[0]!r}; choose from {', '.join(FORMATS)}.")
    out = Path(out_dir) if out_dir is not None else default_out_dir(runs)
    if out.exists() and not out.is_dir():
        raise GmbenchError(f"--out {out} is a file; pass a folder for the report.")
    out.mkdir(parents=True, exist_ok=True)
    inputs = gather(runs, out, with_figures=any(f != "csv" for f in formats))
    targets = []
    for fmt in dict.fromkeys(formats):
        targets.append(out / f"report.{EXTENSIONS[fmt]}")
        write_text(targets[-1], RENDERERS[fmt](inputs))
    return targets
