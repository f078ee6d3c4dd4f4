"""Quality curves: when points are due, time to a target, the [curve] suite table, the new record columns."""
import math

import pytest

from gmbench.bench.curves import CurvePoint, CurveSchedule, curve_id, format_target, time_to_id, time_to_targets
from gmbench.bench.suite import CurveSettings, parse_suite
from gmbench.errors import GmbenchError
from gmbench.report import metrics_info
from gmbench.report.records import COLUMNS, load_records, to_frame, write_records


def test_time_to_target_is_the_first_point_that_reaches_it():
    points = [CurvePoint(100, 10.0, 900.0), CurvePoint(200, 21.0, 300.0), CurvePoint(300, 33.0, 150.0),
              CurvePoint(400, 42.0, 180.0), CurvePoint(500, 55.0, 90.0)]
    got = time_to_targets(list(reversed(points)), (200.0, 150.0, 100.0, 50.0), higher_is_better=False)
    assert [(t, p.time if p else None) for t, p in got] == [(200.0, 33.0), (150.0, 33.0), (100.0, 55.0), (50.0, None)]
    # higher is better (e.g. IS): reaching means >= X
    scores = [CurvePoint(1, 1.0, 2.0), CurvePoint(2, 2.0, 6.5), CurvePoint(3, 3.0, 5.0)]
    assert [p.steps if p else None for _, p in time_to_targets(scores, (6.0, 9.0), True)] == [2, None]


def test_points_fall_on_the_first_block_boundary_after_each_multiple():
    # warm-up 10 steps, then blocks of 50: boundaries 10, 60, 110, ...
    schedule = CurveSchedule(CurveSettings(every_steps=100))
    due = []
    for steps in range(10, 520, 50):
        if schedule.due(steps, 0.0):
            due.append(steps)
            schedule.scored(steps, 0.0)
    assert due == [110, 210, 310, 410, 510]
    by_time = CurveSchedule(CurveSettings(every_seconds=30.0))
    due = []
    for steps, seconds in [(1, 12.0), (2, 29.9), (3, 31.0), (4, 95.0), (5, 100.0), (6, 121.0)]:
        if by_time.due(steps, seconds):
            due.append(steps)
            by_time.scored(steps, seconds)
    assert due == [3, 4, 6]  # a long block that spans two intervals gives one point, not two
    both = CurveSchedule(CurveSettings(every_steps=100, every_seconds=30.0))
    assert both.due(100, 1.0) and both.due(5, 30.0) and not both.due(99, 29.0)
    assert not CurveSchedule(CurveSettings()).due(10**6, 1e6)  # off


def test_metric_ids_and_their_kinds():
    assert curve_id("fid") == "curve_fid"
    assert [time_to_id("fid", x) for x in (200, 200.0, 12.5, 0.1)] == [
        "time_to_fid@200", "time_to_fid@200", "time_to_fid@12.5", "time_to_fid@0.1"]
    assert format_target(1e-5) == "1e-05"
    assert metrics_info.kind("curve_fid") == "curve" and metrics_info.kind("time_to_fid@12.5") == "time_to_quality"
    assert metrics_info.time_to_target("time_to_fid@12.5") == 12.5
    assert metrics_info.kind("curve_time") == "performance" and metrics_info.kind("fid") == "quality"
    ordered = sorted(["train_time", "time_to_fid@200", "fid", "params", "time_to_fid@50"], key=metrics_info.order_key)
    assert ordered == ["fid", "time_to_fid@50", "time_to_fid@200", "train_time", "params"]


SUITE = """
[budget]
steps = 5
[curve]
every_steps = 100
n_samples = 300
targets = [200, 100]
[models.dcgan]
width = 8
[models.vae]
curve = {{ every_seconds = 15, n_samples = 200 }}
[models.wgan-gp]
curve = false
{extra}
"""


def test_curve_table_model_override_off_and_set_option():
    suite = parse_suite(SUITE.format(extra=""), "t")
    dcgan, vae, wgan = (m.curve for m in suite.models)
    assert dcgan == CurveSettings(every_steps=100, n_samples=300, targets=(200.0, 100.0))
    assert vae == CurveSettings(every_steps=100, every_seconds=15.0, n_samples=200, targets=(200.0, 100.0))
    assert wgan == CurveSettings() and not wgan.enabled
    assert suite.models[0].overrides == {"width": 8}  # curve is not a model config key
    # --set curve.* wins over [curve] and every model's curve
    suite = parse_suite(SUITE.format(extra=""), "t", set_options={"curve": {"n_samples": "64", "targets": "300"}})
    assert [m.curve.n_samples for m in suite.models] == [64, 64, 500]  # curve = false stays off
    assert suite.models[0].curve.targets == (300.0,)
    off = parse_suite(SUITE.format(extra=""), "t", set_options={"curve": {"every_steps": "none", "targets": ""}})
    assert not off.models[0].curve.enabled and off.models[1].curve.every_seconds == 15.0


@pytest.mark.parametrize("extra, set_options, message", [
    ("[models.ddpm]\ncurve = { metric = 'fidd' }", None, r"\[models.ddpm\] curve: Unknown metric\(s\) 'fidd'"),
    ("[models.ddpm]\ncurve = { metric = 'is', n_samples = 8 }", None, "curve: 8 samples are too few: is needs 10"),
    ("[models.ddpm]\ncurve = { extractor = 'lenet' }", None, "Unknown extractor 'lenet'"),
    ("[models.ddpm]\ncurve = { every_steps = 0 }", None, "curve every_steps must be >= 1"),
    ("[models.ddpm]\ncurve = { every_seconds = -1.0 }", None, "curve every_seconds must be > 0"),
    ("[models.ddpm]\ncurve = { n_samples = 1 }", None, "curve n_samples must be >= 2"),
    ("[models.ddpm]\ncurve = { targets = [10, 10] }", None, "distinct finite numbers"),
    ("[models.ddpm]\ncurve = { every_step = 5 }", None, "unknown key 'every_step'. Valid keys: every_seconds, every_steps"),
    ("[models.ddpm]\ncurve = 3", None, r"curve must be a table such as \{ every_steps = 100 \}, or false"),
    ("", {"curve": {"every_steps": "none"}}, r"\[models.dcgan\] curve: targets \[200.0, 100.0\] are given but no interval"),
    ("", {"curve": {"every_steps": "ten"}}, "every_steps='ten' must be int or none"),
])
def test_curve_mistakes_are_caught_at_load(extra, set_options, message):
    with pytest.raises(GmbenchError, match=message):
        parse_suite(SUITE.format(extra=extra), "t", set_options=set_options)


def test_records_written_before_the_curve_columns_still_load(tmp_path):
    """A records.csv of the columns before the curves (issue 9) and the host (issue 11) loads with them empty."""
    rows = [dict(run_id="r", model="dcgan", metric=m, value=v, status="done") for m, v in (("fid", 70.0), ("params", 3.0))]
    old = to_frame(rows).drop(columns=["train_steps", "train_time", "host"])
    old.to_csv(tmp_path / "records.csv", index=False)
    records = load_records(tmp_path)
    assert list(records.columns[: len(COLUMNS)]) == COLUMNS
    assert records["train_steps"].isna().all() and records["train_time"].isna().all()
    assert str(records["train_steps"].dtype) == "Int64" and records["value"].tolist() == [70.0, 3.0]
    assert records["host"].tolist() == ["", ""]


def test_not_reached_is_inf_and_survives_the_csv(tmp_path):
    rows = [dict(run_id="r", model="dcgan", metric="time_to_fid@50", value=math.inf, status="done"),
            dict(run_id="r", model="dcgan", metric="curve_fid", value=80.5, train_steps=300, train_time=12.25,
                 status="done"),
            dict(run_id="r", model="dcgan", metric="fid", value=70.0, status="done")]
    write_records(to_frame(rows), tmp_path / "records.csv")
    back = load_records(tmp_path / "records.csv").set_index("metric")
    assert back.loc["time_to_fid@50", "value"] == math.inf
    assert back.loc["curve_fid", "train_steps"] == 300 and back.loc["curve_fid", "train_time"] == 12.25
    assert back.loc[["fid", "time_to_fid@50"], "train_steps"].isna().all()


class FakeClock:
    """Stands in for the runner's ``time`` module: every perf_counter() read advances one second."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now

    def time(self) -> float:
        return self.now


def test_training_clock_and_budget_exclude_curve_evaluations(monkeypatch, tmp_path):
    """Each evaluation takes 1000 fake seconds; training time, the seconds budget and the points' times
    must not see them."""
    import torch

    from gmbench.bench import runner

    suite = parse_suite("[budget]\nseconds = 40\nbatch_size = 8\n[timing]\nwarmup_steps = 0\nblock_steps = 1\n"
                        "[curve]\nevery_steps = 3\ntargets = [95, 1]\n[models.dcgan]\nwidth = 8\n", "t")
    job = suite.jobs()[0]
    ctx = runner.JobContext("r", tmp_path, torch.device("cpu"), suite.metrics, suite.timing, quiet=True)
    rec = runner.JobRecorder(job, ctx, "gan")
    clock, calls = FakeClock(), []

    def fake_point(model, job, ctx, rec, steps, at, events):
        clock.now += 1000.0
        calls.append((steps, at))
        rec.add("curve_fid", 100.0 - steps, "", False, extractor="mnist-lenet", extractor_sha256="x", n_samples=500,
                train_steps=steps, train_time=at)
        return CurvePoint(steps, at, 100.0 - steps)

    monkeypatch.setattr(runner, "time", clock)
    monkeypatch.setattr(runner, "curve_point", fake_point)
    torch.manual_seed(0)
    model = runner.build_model(job, torch.device("cpu"))
    images = torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8)
    assert runner.train(model, job, ctx, rec, images)
    rows = {r["metric"]: r for r in rec.rows}
    steps, train_time = rows["train_steps"]["value"], rows["train_time"]["value"]
    assert 40 <= train_time < 50 and steps >= 9  # the budget ran on training seconds, not on 1000 s evaluations
    assert [s for s, _ in calls] == [s for s in range(3, int(steps) + 1, 3)] + ([] if steps % 3 == 0 else [steps])
    assert all(at < 50 for _, at in calls) and [at for _, at in calls] == sorted(at for _, at in calls)
    assert rows["curve_time"]["value"] >= 1000 * len(calls)
    hit = rows["time_to_fid@95"]  # fid = 100 - steps: first <= 95 at the point after step 6
    assert (hit["value"], hit["train_steps"], hit["train_time"]) == (calls[1][1], 6, calls[1][1])
    assert rows["time_to_fid@1"]["value"] == math.inf and rows["time_to_fid@1"]["train_steps"] is None
