"""gmbench report: the tables' numbers equal the records' (computed here independently), every format renders."""
from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path

import pytest
from tests.report_runs import INCEPTION, LENET, make_run

from gmbench.cli import main
from gmbench.report.render import write_report
from gmbench.report.runs import load_run
from gmbench.report.tables import dataset_table, summarise


@pytest.fixture(scope="module")
def run3(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs"), seeds=3, jitter=0.05, samples=True)


@pytest.fixture(scope="module")
def reports(run3, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("report")
    argv = ["report", str(run3), "--out", str(out)]
    assert main(argv + ["--format", "md", "--format", "html", "--format", "latex", "--format", "csv"]) == 0
    return {"md": out / "report.md", "html": out / "report.html", "latex": out / "report.tex", "csv": out / "report.csv"}


def _expected(run: Path) -> dict[tuple, tuple[float, float, int]]:
    """(dataset, model, variant, metric, extractor) -> (mean, sample std, n) from the raw CSV, done rows only."""
    values = defaultdict(list)
    with open(run / "records.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["status"] == "done" and row["value"]:
                values[(row["dataset"], row["model"], row["variant"], row["metric"], row["extractor"])].append(float(row["value"]))
    return {k: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else math.nan, len(v)) for k, v in values.items()}


def test_csv_summary_equals_records_mean_std_and_seed_count(run3, reports):
    expected = _expected(run3)
    with open(reports["csv"], newline="") as fh:
        got = {(r["dataset"], r["model"], r["variant"], r["metric"], r["extractor"]): r for r in csv.DictReader(fh)}
    assert set(got) == set(expected)
    for key, (mean, std, n) in expected.items():
        assert float(got[key]["mean"]) == pytest.approx(mean, rel=1e-12)
        assert float(got[key]["std"]) == pytest.approx(std, rel=1e-9)
        assert int(got[key]["n_seeds"]) == n == 3


def _shows(text: str, value: float) -> bool:
    """True when ``text`` is ``value`` rounded to the digits it shows (fixed point or scientific)."""
    if "e" in text:
        mantissa = text.split("e")[0]
        digits = len(mantissa.replace("-", "").replace(".", "").lstrip("0"))
        return math.isclose(float(text), value, rel_tol=0.5 * 10 ** (1 - digits))
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(float(text) - value) <= 0.5 * 10 ** -decimals + 1e-12


def _md_table(text: str, dataset: str) -> dict[str, dict[str, str]]:
    """The Markdown tables under '## dataset' (one per '### part') as {row label: {column: cell}}, parts merged."""
    section = text.split(f"## {dataset}\n", 1)[1].split("\n## ", 1)[0]
    merged: dict[str, dict[str, str]] = {}
    for block in section.split("\n### ")[1:]:
        rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in block.splitlines() if line.startswith("|")]
        header, body = rows[0], rows[2:]
        for r in body:
            merged.setdefault(r[0], {}).update(zip(header, r))
    return merged


def test_markdown_cells_are_mean_std_n_and_best_excludes_reference_rows(run3, reports):
    expected = _expected(run3)
    table = _md_table(reports["md"].read_text().split("## Failed")[0], "mnist")
    for row, (model, variant) in {"wgan-gp": ("wgan-gp", ""), "ddpm (ddim-50)": ("ddpm", "ddim-50"),
                                  "vae": ("vae", ""), "pca-gaussian — baseline": ("pca-gaussian", "")}.items():
        assert table[row]["seeds"] == "3"
        for column, metric, extractor in ((f"fid [{LENET}]", "fid", LENET), (f"kid [{LENET}]", "kid", LENET),
                                          ("sample_throughput (images/s)", "sample_throughput", "")):
            mean, std, _ = expected[("mnist", model, variant, metric, extractor)]
            shown_mean, shown_std = table[row][column].strip("*").split(" ± ")
            assert _shows(shown_mean, mean) and _shows(shown_std, std), (row, column)
    assert table["ddpm (ddpm-1000)"][f"fid [{LENET}]"].startswith("**")
    # real-data has the lowest FID of all, but it is the floor, not a contender
    assert _shows(table["real-data — floor"][f"fid [{LENET}]"].split(" ± ")[0], expected[("mnist", "real-data", "", "fid", LENET)][0])
    assert "pca-gaussian — baseline" in table
    bold_columns = [c for c in table["ddpm (ddpm-1000)"] if table["ddpm (ddpm-1000)"][c].startswith("**")]
    assert f"fid [{LENET}]" in bold_columns and "params" not in bold_columns


def test_published_numbers_sit_in_their_own_column_beside_inception_fid(reports):
    text = reports["md"].read_text()
    mnist = _md_table(text.split("## Failed")[0], "mnist")
    columns = list(mnist["dcgan"])
    published = f"fid [{INCEPTION}] published"
    assert columns.index(published) == columns.index(f"fid [{INCEPTION}]") + 1
    assert mnist["dcgan"][published] == "6.8 ± 0.5 (Lucic et al. 2018, NS GAN)"
    assert mnist["vae"][published] == "16.6 ± 0.4 (Dai & Wipf 2019, VAE (cross-entropy decoder))"
    assert mnist["ddpm (ddim-50)"][published] == "" and mnist["real-data — floor"][published] == ""
    fashion = _md_table(text.split("## mnist")[0], "fashion-mnist")
    assert published not in fashion["dcgan"]


def test_each_dataset_table_is_shown_as_a_quality_part_and_a_speed_and_cost_part(run3, reports):
    """The wide table (30-odd columns) ran off the page: each format shows it as two tables, every column in
    exactly one of them (the seeds column in both, family in the first), quality scores apart from what they cost."""
    from gmbench.report import metrics_info

    table = dataset_table(summarise(load_run(run3).records), "mnist")
    parts = table.split()
    assert list(parts) == ["quality", "speed and cost"]
    quality, cost = (set(p.text.columns) - {"family", "seeds"} for p in parts.values())
    assert not quality & cost and quality | cost == set(table.text.columns) - {"family", "seeds"}
    assert {f"fid [{LENET}]", f"fid [{INCEPTION}]", table.published_column} <= quality
    assert {"train_throughput (images/s)", "sample_throughput (images/s)", "params", "nfe"}.issubset(cost)
    kind = {c: metrics_info.kind(c.split(" ")[0]) for c in quality | cost}  # "fid [mnist-lenet]" -> "fid"
    assert {kind[c] for c in quality} <= {"quality", "time_to_quality"} and {kind[c] for c in cost} == {"performance", "setting"}
    assert list(parts["quality"].text.columns[:2]) == ["family", "seeds"]
    assert parts["speed and cost"].text.columns[0] == "seeds"
    for part in parts.values():
        assert part.best.shape == part.text.shape and part.text.index.equals(table.text.index)
        assert (part.best == table.best[part.text.columns]).all().all()
    md = reports["md"].read_text()
    section = md.split("## mnist\n", 1)[1].split("\n## ", 1)[0]
    assert section.count("### Quality\n") == 1 and section.count("### Speed and cost\n") == 1
    page = reports["html"].read_text()
    assert page.count("<h3>Quality</h3>") == page.count("<h3>Speed and cost</h3>") == 2  # mnist, fashion-mnist
    assert "<th>peak_<wbr>memory (MiB)</th>" in page and "(images/<wbr>s)</th>" in page  # headers may wrap inside words


def test_rows_whose_cells_have_different_seed_counts_say_n_per_cell(tmp_path):
    run = load_run(make_run(tmp_path, seeds=3))
    records = run.records[~((run.records["model"] == "vae") & (run.records["metric"] == "fid")
                            & (run.records["seed"] == 2))]
    table = dataset_table(summarise(records), "mnist")
    assert table.text.loc["vae", "seeds"] == "varies (n in cells)"
    assert table.text.loc["vae", f"fid [{LENET}]"].endswith("(n=2)")
    assert table.text.loc["vae", f"kid [{LENET}]"].endswith("(n=3)")


def test_markdown_lists_failed_jobs_provenance_and_figures(reports):
    text = reports["md"].read_text()
    assert "| mnist | began |  | 0 | diverged |" in text
    assert "began" not in text.split("## Failed")[0]
    assert f"weights sha256 {'a' * 64}, samples per score 10000" in text
    assert "commit 0123456789abcdef" in text and "torch 2.14.1" in text and "device cuda; dtype float32" in text
    figures = reports["md"].parent / "figures"
    for stem in ("quality_vs_train_time", "quality_vs_sampling_cost", "throughput", "samples"):
        assert f"](figures/{stem}.png)" in text
        assert (figures / f"{stem}.png").stat().st_size > 0 and (figures / f"{stem}.svg").stat().st_size > 0


def test_latex_is_a_document_with_escaped_tables(reports):
    tex = reports["latex"].read_text()
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert tex.count(r"\begin{tabular}") == 4 and r"\toprule" in tex  # 2 datasets x (quality, speed and cost)
    assert r"train\_throughput (images/s)" in tex and r"$\pm$" in tex and r"\textbf{" in tex
    assert r"Dai \& Wipf 2019" in tex
    assert tex.count("Provenance: ") == 2 and tex.count("Provenance as in the table before.") == 2  # once per dataset


def test_html_is_self_contained(reports):
    page = reports["html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 4
    assert 'src="figures/' not in page and "http://" not in page and "https://" not in page
    assert "<strong>" in page and 'class="published"' in page


def test_single_seed_cells_have_no_spread(tmp_path):
    run = load_run(make_run(tmp_path, seeds=1))
    table = dataset_table(summarise(run.records), "mnist")
    mean = _expected(run.path)[("mnist", "vae", "", "fid", LENET)][0]
    assert " ± " not in table.text.loc["vae", f"fid [{LENET}]"] and _shows(table.text.loc["vae", f"fid [{LENET}]"], mean)
    assert table.text.loc["vae", "seeds"] == "1" and table.text.loc["vae", "params"] == "1e+06"
    assert table.text.loc["ddpm (ddim-50)", "nfe"] == "50"


def test_report_bad_inputs_exit_2(tmp_path, capsys):
    not_a_run = tmp_path / "nothing"
    not_a_run.mkdir()
    assert main(["report", str(not_a_run)]) == 2
    assert "is not a gmbench run" in capsys.readouterr().err
    run = make_run(tmp_path)
    (tmp_path / "file").write_text("x")
    assert main(["report", str(run), "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err


def test_report_of_a_run_where_every_job_failed_lists_the_failures(tmp_path):
    run = load_run(make_run(tmp_path / "runs"))
    failed = run.records.assign(status="failed")
    [md] = write_report([type(run)(run.path, failed, run.manifests)], ["md"], tmp_path / "report")
    text = md.read_text()
    assert "## Failed or diverged jobs" in text and "| mnist | vae |  | 0 | failed |" in text
    assert "## mnist" not in text


def test_provenance_names_the_hosts_a_dataset_ran_on(tmp_path):
    """Distributed runs and shards spread jobs over machines; records without a host (older runs) say none."""
    from gmbench.report.tables import provenance

    run = load_run(make_run(tmp_path))
    assert not any("host" in line for line in provenance(run.records, run.manifests, "mnist"))
    records = run.records.assign(host=["node02" if seed else "node01" for seed in run.records["seed"]])
    one_host = provenance(records[records["seed"] == 0], run.manifests, "mnist")
    assert any(line.endswith("; host node01") for line in one_host)
    records.loc[records.index[::2], "host"] = "node02"
    assert any(line.endswith("; hosts node01, node02") for line in provenance(records, run.manifests, "mnist"))


def test_provenance_names_speed_options_and_data_parallel_models(tmp_path):
    """Rows record their speed options and world size; the report says both, and older records say neither."""
    from gmbench.report.tables import provenance

    run = load_run(make_run(tmp_path))
    assert not any("speed" in line or "data-parallel" in line for line in provenance(run.records, run.manifests, "mnist"))
    model = run.records["model"].iloc[0]
    records = run.records.assign(speed="fused", world_size=[2 if m == model else 1 for m in run.records["model"]])
    line = next(line for line in provenance(records, run.manifests, "mnist") if line.startswith("device "))
    assert "; speed options fused" in line and line.endswith(f"; {model} trained data-parallel over 2 ranks")


def test_published_numbers_only_beside_the_dataset_they_are_for(tmp_path):
    """A report of runs without MNIST shows no published (MNIST) numbers, neither the section nor the legend's
    sentence about them; with MNIST it shows both."""
    import pandas as pd

    run = make_run(tmp_path / "runs")
    records = pd.read_csv(run / "records.csv")
    records[records["dataset"] != "mnist"].to_csv(run / "records.csv", index=False)
    for fmt, extension in (("md", "md"), ("html", "html")):
        assert main(["report", str(run), "--out", str(tmp_path / "report"), "--format", fmt]) == 0
        text = (tmp_path / "report" / f"report.{extension}").read_text()
        assert "Published reference numbers" not in text and "marked \"published\"" not in text.replace("&quot;", '"')
        assert "fashion-mnist" in text
    assert main(["report", str(make_run(tmp_path / "with-mnist")), "--out", str(tmp_path / "mnist"), "--format", "md"]) == 0
    text = (tmp_path / "mnist" / "report.md").read_text()
    assert "Published reference numbers" in text and "marked \"published\"" in text
