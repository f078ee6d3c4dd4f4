"""gmbench history: a metric over runs in start-time order, with each run's commit."""
from __future__ import annotations

import csv

import pytest

from tests.report_runs import make_run, scale_metric

from gmbench.cli import main


def test_history_orders_runs_by_start_time_and_names_commits(tmp_path, capsys):
    results = tmp_path / "results" / "runs"
    # written out of order on purpose: the folder names sort opposite to the start times
    make_run(results, name="quick-b", started="2026-11-28T12:00:00Z", commit="2222222aaaa")
    slow = make_run(results, name="quick-a", started="2026-11-28T14:00:00Z", commit="3333333bbbb")
    make_run(results, name="quick-c", started="2026-11-27T09:00:00Z", commit="1111111cccc")
    scale_metric(slow, 0.5, "dcgan", "train_throughput")
    out = tmp_path / "hist"
    assert main(["history", str(tmp_path / "results"), "--metric", "train_throughput", "--model", "dcgan",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.index("1111111ccc") < text.index("2222222aaa") < text.index("3333333bbb")
    with open(out / "history-dcgan-train_throughput.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["dataset"] == "mnist"]
    assert [r["run_id"] for r in rows] == ["quick-c", "quick-b", "quick-a"]
    assert float(rows[2]["mean"]) == pytest.approx(float(rows[1]["mean"]) * 0.5)
    for figure in ("png", "svg"):  # the plot was written, not empty
        assert (out / f"history-dcgan-train_throughput.{figure}").stat().st_size


def test_history_unknown_model_or_empty_folder_exit_2(tmp_path, capsys):
    make_run(tmp_path / "results")
    assert main(["history", str(tmp_path / "results"), "--metric", "fid", "--model", "dcgna"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no run under" in err.lower() and "Models seen:" in err and "dcgan" in err
    (tmp_path / "empty").mkdir()
    assert main(["history", str(tmp_path / "empty"), "--metric", "fid", "--model", "dcgan"]) == 2
    assert "No run folders" in capsys.readouterr().err
