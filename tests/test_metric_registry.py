"""A metric registered from outside gmbench (here: from the test) is scored by evaluate, `gmbench eval`, a suite's
jobs and training curves, listed by `gmbench list`, and read by the report and compare; bad registrations and
unknown names are clear errors."""
import json
import math

import numpy as np
import pytest
import torch

from gmbench import register_metric
from gmbench.bench.curves import time_to_id
from gmbench.cli import main
from gmbench.data import load_dataset
from gmbench.errors import GmbenchError
from gmbench.metrics import build_extractor, check_metrics, evaluate
from gmbench.metrics.features import extract
from gmbench.registry import METRICS
from gmbench.report import metrics_info
from gmbench.report.records import load_records
from tests.conftest import requires_mnist

TOY = "test-mean-l2"


def mean_l2(fake, real, ctx):
    """Distance between the two sets' mean features, and its spread: the largest single coordinate gap."""
    return {TOY: (fake.mu - real.mu).norm().item(), "test-mean-l2_max": (fake.mu - real.mu).abs().max().item()}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("GMBENCH_CACHE", str(tmp_path / "cache"))
    register_metric(TOY, mean_l2, higher_is_better=False, unit="au", min_samples=3,
                    extra_outputs={"test-mean-l2_max": False})
    yield
    METRICS.unregister(TOY)


def brute_force_mean_l2(a, b) -> float:
    """The toy metric by hand: per-coordinate means in plain Python."""
    ma = [sum(col) / len(col) for col in zip(*a.tolist())]
    mb = [sum(col) / len(col) for col in zip(*b.tolist())]
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(ma, mb)))


@requires_mnist
def test_evaluate_scores_a_registered_metric_with_its_direction_unit_and_extractor(toy):
    samples, reference = load_dataset("mnist", "train")[0][:40], load_dataset("mnist", "test")[0][:50]
    scores = evaluate(samples, reference=reference, metrics=[TOY, "fid"])
    assert [s.metric for s in scores] == [TOY, "test-mean-l2_max", "fid"]
    toy_score = scores[0]
    lenet = build_extractor("mnist-lenet")
    expected = brute_force_mean_l2(extract(lenet, samples)[0], extract(lenet, reference)[0])
    assert toy_score.value == pytest.approx(expected, rel=1e-9)
    assert (toy_score.higher_is_better, toy_score.unit, toy_score.extractor) == (False, "au", "mnist-lenet")
    assert toy_score.extractor_sha256 == lenet.weights_sha256 and toy_score.n_reference == 50
    with pytest.raises(GmbenchError, match=f"2 samples are too few: {TOY} needs 3"):
        evaluate(samples, reference=reference[:2], metrics=[TOY])  # per side: the reference too


@requires_mnist
def test_gmbench_eval_accepts_a_registered_metric(toy, tmp_path, capsys):
    np.save(tmp_path / "a.npy", load_dataset("mnist", "train")[0][:30].numpy())
    assert main(["eval", str(tmp_path / "a.npy"), "--ref", "mnist:test:40", "--metrics", TOY, "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert [(s["metric"], s["unit"], s["higher_is_better"]) for s in scores] == [
        (TOY, "au", False), ("test-mean-l2_max", "au", False)]


def test_an_unknown_metric_error_lists_the_registered_names(toy, capsys):
    with pytest.raises(GmbenchError, match=f"valid metrics: fid, kid, .*classifier_accuracy_score, {TOY}\\."):
        check_metrics("mnist-lenet", ["fid", "mean-l3"])
    assert main(["eval", "x.npy", "--metrics", "mean-l3"]) == 2
    assert TOY in capsys.readouterr().err


def test_report_kinds_and_order_come_from_the_registry(toy):
    assert metrics_info.kind(TOY) == "quality" and metrics_info.kind("test-mean-l2_max") == "spread"
    ordered = sorted(["test-mean-l2_max", "train_throughput", "unregistered", TOY, "kid_std", "fid"],
                     key=metrics_info.order_key)
    assert ordered == ["fid", TOY, "unregistered", "train_throughput", "kid_std", "test-mean-l2_max"]


def test_gmbench_list_shows_a_registered_metric_with_direction_unit_and_source(toy, capsys):
    assert main(["list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["metrics"]}
    assert listed[TOY] == {"name": TOY, "higher_is_better": False, "unit": "au", "needs": ["features"],
                           "extra_outputs": ["test-mean-l2_max"], "source": "tests"}
    assert listed["is"]["higher_is_better"] and listed["fid"]["source"] == "built-in"
    assert main(["list"]) == 0
    assert f"  {TOY:<26} lower is better   au       tests" in capsys.readouterr().out.splitlines()


@requires_mnist
def test_a_suite_scores_and_curves_a_registered_metric_and_compare_reads_it_without_the_plugin(toy, tmp_path, capsys):
    # Targets in the toy's direction (lower is better): 1e9 is reached at the first curve point, 1e-9 never.
    run = [f"--set=metrics.names=fid,{TOY}", f"--set=curve.metric={TOY}", "--set=curve.targets=1e9,1e-9",
           "--set=budget.steps=5", "--quiet"]
    for name in ("base", "cur"):
        assert main(["run", "smoke", "--out", str(tmp_path / name), *run]) == 0
    records = load_records(tmp_path / "base").set_index("metric")
    row = records.loc[TOY]
    assert (row["unit"], bool(row["higher_is_better"]), row["extractor"], row["status"]) == ("au", False, "mnist-lenet",
                                                                                           "done")
    assert row["value"] > 0 and records.loc["test-mean-l2_max", "value"] > 0
    assert np.isfinite(records.loc[time_to_id(TOY, 1e9), "value"])
    assert records.loc[time_to_id(TOY, 1e-9), "value"] == math.inf
    METRICS.unregister(TOY)  # compare reads directions from the records, not from the registry
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "cur"), "--format", "json"]) == 0
    toy_row = next(r for r in json.loads(capsys.readouterr().out)["rows"] if r["metric"] == TOY)
    change = np.sign(toy_row["current"] - toy_row["baseline"])
    assert (toy_row["unit"], toy_row["kind"], toy_row["direction"]) == ("au", "quality", {-1: "better", 0: "same",
                                                                                        1: "worse"}[change])
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "cur")]) == 0
    assert f"| {TOY} " in capsys.readouterr().out


def test_bad_registrations_are_clear_errors(toy):
    with pytest.raises(GmbenchError, match="needs must name features and/or logits"):
        register_metric("test-bad", mean_l2, needs="pixels", higher_is_better=True)
    with pytest.raises(GmbenchError, match="needs must name features and/or logits"):
        register_metric("test-bad", mean_l2, needs="dataset", higher_is_better=True)
    with pytest.raises(GmbenchError, match="needs must be a name or a tuple of names"):
        register_metric("test-bad", mean_l2, needs=3, higher_is_better=True)
    with pytest.raises(GmbenchError, match="fn must be callable"):
        register_metric("test-bad", 3.0, higher_is_better=True)
    with pytest.raises(GmbenchError, match="already taken"):
        register_metric(TOY, mean_l2, higher_is_better=False)
    with pytest.raises(GmbenchError, match="kid_std are already scored"):
        register_metric("test-bad", mean_l2, higher_is_better=False, extra_outputs={"kid_std": False})
    with pytest.raises(GmbenchError, match="higher_is_better must be True or False"):
        register_metric("test-bad", mean_l2, higher_is_better="lower")
    with pytest.raises(GmbenchError, match="min_samples must be an int >= 1"):
        register_metric("test-bad", mean_l2, higher_is_better=True, min_samples=0)
    with pytest.raises(GmbenchError, match="name must be"):
        register_metric("test bad", mean_l2, higher_is_better=True)
    with pytest.raises(GmbenchError, match="expected a gmbench.registry.Metric"):
        METRICS.register("test-bad", mean_l2)
    assert "test-bad" not in METRICS


def test_register_metric_is_a_decorator_that_returns_the_function():
    @register_metric("test-decorated", needs=("features", "logits"), higher_is_better=True)
    def decorated(fake, real, ctx):
        return 1.0

    try:
        assert callable(decorated) and METRICS.get("test-decorated").fn is decorated
        assert METRICS.get("test-decorated").needs == {"features", "logits"}
    finally:
        METRICS.unregister("test-decorated")


def test_one_function_under_two_names_runs_once_per_evaluation(tmp_path, monkeypatch):
    monkeypatch.setenv("GMBENCH_CACHE", str(tmp_path))
    calls = []

    def pair(fake, real, ctx):
        calls.append(len(fake.features))
        return {"test-left": 1.0, "test-right": 2.0}

    for name in ("test-left", "test-right"):
        register_metric(name, pair, higher_is_better=True)
    try:
        images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        scores = evaluate(images, reference=images, metrics=["test-right", "test-left"])
        assert [(s.metric, s.value) for s in scores] == [("test-right", 2.0), ("test-left", 1.0)] and calls == [8]
    finally:
        for name in ("test-left", "test-right"):
            METRICS.unregister(name)
