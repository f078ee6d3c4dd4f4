"""Quality curves in reports and compare: the figure, time_to_fid@X columns, "not reached", gating.

The synthetic run (tests/report_runs.py, ``curves=True``, 3 seeds) has, on MNIST, for time_to_fid@100:
dcgan 90/120/120 s, wgan-gp 120 s in every seed, vae never, ddpm 30/60/60 s; for time_to_fid@20 only
ddpm seed 0 (120 s); on Fashion-MNIST dcgan reaches fid 100 in seed 0 only.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from tests.report_runs import LENET, make_run, scale_metric
from tests.test_report_render import _md_table

from gmbench.cli import main
from gmbench.report.records import load_records, write_records
from gmbench.report.tables import dataset_table, summarise
from gmbench.report.runs import load_run

T100, T20 = f"time_to_fid@100 [{LENET}] (s)", f"time_to_fid@20 [{LENET}] (s)"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs"), seeds=3, jitter=0.0, curves=True, failed=False)


def test_tables_show_time_to_fid_columns_and_not_reached(run):
    table = dataset_table(summarise(load_run(run).records), "mnist")
    cells = table.text
    assert cells.loc["dcgan", T100] == "110 ± 17.3"  # mean and std of 90, 120, 120
    assert cells.loc["wgan-gp", T100] == "120 ± 0"
    assert cells.loc["vae", T100] == "not reached"
    assert cells.loc["ddpm", T20] == "not reached by 2 of 3 seeds"
    assert cells.loc["ddpm", T100] == "50 ± 17.32" and table.best.loc["ddpm", T100]
    assert not table.best[T20].any()  # no model reached fid 20 in every seed: nobody is best
    assert not any(c.startswith("curve_fid") for c in cells.columns)  # points are drawn, not averaged
    columns = list(cells.columns)
    assert columns.index(f"fid [{LENET}]") < columns.index(T20) < columns.index(T100) < columns.index("train_throughput (images/s)")
    fashion = dataset_table(summarise(load_run(run).records), "fashion-mnist").text
    assert fashion.loc["dcgan", T100] == "not reached by 2 of 3 seeds"


def test_report_draws_the_curves_figure_and_explains_the_columns(run, tmp_path):
    assert main(["report", str(run), "--out", str(tmp_path), "--format", "md", "--format", "html"]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "](figures/quality_curves.png)" in md and (tmp_path / "figures" / "quality_curves.svg").stat().st_size > 0
    assert "Columns time_to_<metric>@X: training seconds" in md
    assert "quality curve curve_fid (and time_to_* targets): extractor mnist-lenet" in md
    assert "samples per point 500, 12 jobs" in md
    table = _md_table(md.split("## Figures")[0], "mnist")
    assert table["vae"][T100] == "not reached" and table["ddpm"][T100] == "**50 ± 17.32**"
    html = (tmp_path / "report.html").read_text()
    assert "Quality during training" in html and html.count("data:image/png;base64,") == 4


def test_curve_figure_draws_one_line_per_job_and_the_targets(run, tmp_path):
    from gmbench.report.figures import quality_curves

    records = load_run(run).records
    png = quality_curves(records, tmp_path)
    assert png.name == "quality_curves.png" and png.stat().st_size > 0
    svg = (tmp_path / "quality_curves.svg").read_text()
    assert "fid = 100" in svg and "fid = 20" in svg and "training time (s, evaluations excluded)" in svg
    assert quality_curves(records[records["metric"] != "curve_fid"], tmp_path / "none") is None


def _compare(capsys, base, cur, *extra):
    code = main(["compare", str(base), str(cur), "--format", "json", *extra])
    payload = json.loads(capsys.readouterr().out)
    rows = {(r["model"], r["dataset"], r["metric"]): r for r in payload["rows"]}
    return code, rows


def _set_values(run: Path, model: str, metric: str, values, dataset: str = "mnist") -> None:
    frame = load_records(run)
    hit = (frame["model"] == model) & (frame["metric"] == metric) & (frame["dataset"] == dataset)
    assert hit.sum() == len(values)
    frame.loc[hit, "value"] = values
    write_records(frame, run / "records.csv")


def test_compare_gates_time_to_fid(run, tmp_path, capsys):
    cur = shutil.copytree(run, tmp_path / "b" / run.name)
    _set_values(cur, "dcgan", "time_to_fid@100", [math.inf] * 3)  # reached -> not reached
    _set_values(cur, "ddpm", "time_to_fid@20", [120.0, 150.0, 150.0])  # reached in 1 of 3 -> in all 3
    _set_values(cur, "wgan-gp", "time_to_fid@100", [150.0, 150.0, 150.0])  # 25% slower in every seed
    code, rows = _compare(capsys, run, cur, "--fail-on", "regression")
    assert code == 1
    dcgan = rows[("dcgan", "mnist", "time_to_fid@100")]
    assert dcgan["verdict"] == "regression" and dcgan["note"] == "reached by 0 of 3 seeds, was 3 of 3"
    assert dcgan["current_n_finite"] == 0 and dcgan["baseline"] == pytest.approx(110.0)
    assert rows[("ddpm", "mnist", "time_to_fid@20")]["verdict"] == "improvement"
    wgan = rows[("wgan-gp", "mnist", "time_to_fid@100")]
    assert wgan["verdict"] == "regression" and wgan["change_pct"] == pytest.approx(25.0)
    assert rows[("vae", "mnist", "time_to_fid@100")]["verdict"] == "unchanged"  # not reached on both sides
    assert rows[("vae", "mnist", "time_to_fid@100")]["note"] == "not reached in either run"
    assert rows[("dcgan", "mnist", "time_to_fid@20")]["verdict"] == "unchanged"
    assert not any(metric.startswith("curve_") for _, _, metric in rows)
    assert {r["verdict"] for k, r in rows.items() if not k[2].startswith("time_to_")} == {"unchanged"}
    assert main(["compare", str(run), str(cur)]) == 0
    out = capsys.readouterr().out
    assert "| dcgan |  | mnist | time_to_fid@100 [mnist-lenet] | 110 ± 17.3 (n=3) | not reached |" in out
    assert "| ddpm |  | mnist | time_to_fid@20 [mnist-lenet] | not reached by 2 of 3 seeds |" in out


def test_time_to_fid_on_other_hardware_is_not_comparable(tmp_path, capsys):
    base = make_run(tmp_path / "a", curves=True)
    cur = make_run(tmp_path / "b", curves=True, device_name="NVIDIA A100")
    _, rows = _compare(capsys, base, cur)
    row = rows[("dcgan", "mnist", "time_to_fid@100")]
    assert row["verdict"] == "not comparable" and "hardware" in row["note"]


def test_scatter_labels_sit_by_their_points_and_a_model_keeps_its_colour_in_every_figure(run, tmp_path, monkeypatch):
    """The synthetic ddpm has three variants on one training time; with ddim-10's fid scaled to the lowest
    (1.4, against 2.0 and 2.8), neither name order nor record order is score order. The label stepped down
    furthest belongs to the lowest point, and ddpm's colour in the scatter is its curve's colour."""
    from gmbench.report import figures

    shutil.copytree(run, tmp_path / "run")
    scale_metric(tmp_path / "run", 0.3, "ddpm", "fid", variant="ddim-10", extractor=LENET)
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, out_dir, stem: drawn.setdefault(stem, fig) and out_dir / stem)
    records = load_run(tmp_path / "run").records
    figures.quality_curves(records, tmp_path)
    figures.quality_vs_train_time(summarise(records), tmp_path)
    scatter = next(ax for ax in drawn["quality_vs_train_time"].axes if ax.get_title() == "mnist")
    ddpm = sorted((a for a in scatter.texts if a.get_text().startswith("ddpm")), key=lambda a: a.xy[1])
    assert [a.get_text() for a in ddpm] == ["ddpm (ddim-10)", "ddpm (ddpm-1000)", "ddpm (ddim-50)"]
    assert [a.xyann[1] for a in ddpm] == sorted(a.xyann[1] for a in ddpm)  # each label keeps its point's rank

    label_at = {tuple(a.xy): a.get_text().split(" (")[0] for a in scatter.texts}
    scatter_colour = {label_at[(c.lines[0].get_xdata()[0], c.lines[0].get_ydata()[0])]: c.lines[0].get_color()
                      for c in scatter.containers}
    curve_colour = {line.get_label(): line.get_color() for line in
                    next(ax for ax in drawn["quality_curves"].axes if ax.get_title() == "mnist").get_lines()
                    if not line.get_label().startswith("_")}
    assert set(curve_colour) == {"dcgan", "wgan-gp", "vae", "ddpm"}
    assert all(scatter_colour[m] == c for m, c in curve_colour.items())
    assert len(set(curve_colour.values())) == len(curve_colour)
