"""gmbench compare: regressions named exactly, seed noise respected, one-sided and incomparable rows listed."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from tests.report_runs import INCEPTION, LENET, make_run, scale_metric

from gmbench.cli import main
from gmbench.report.compare import compare_runs, seeds_not_done, welch_p
from gmbench.report.records import load_records, write_records
from gmbench.report.runs import load_run


def _compare_json(capsys, baseline, current, *extra):
    code = main(["compare", str(baseline), str(current), "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def _named(payload, verdict):
    return sorted((r["model"], r["variant"], r["dataset"], r["metric"], r["extractor"])
                  for r in payload["rows"] if r["verdict"] == verdict)


def _row(table, model, metric, extractor=""):
    """One mnist row of a comparison table."""
    return table[(table["model"] == model) & (table["metric"] == metric) & (table["dataset"] == "mnist")
                 & (table["extractor"] == extractor)].iloc[0]


def _verdict(table, model, metric, extractor=""):
    row = _row(table, model, metric, extractor)
    return row["verdict"], row["direction"], row["change_pct"]


def test_two_copies_of_a_run_have_no_regression(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression")
    assert code == 0
    assert not payload["regressed"]
    assert set(r["verdict"] for r in payload["rows"]) == {"unchanged"}


def test_slower_training_and_worse_fid_are_named_exactly_and_fail_the_gate(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    scale_metric(cur, 0.7, "dcgan", "train_throughput")
    scale_metric(cur, 1.2, "vae", "fid", extractor=LENET)
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression")
    assert code == 1
    assert _named(payload, "regression") == [
        ("dcgan", "", "mnist", "train_throughput", ""),
        ("vae", "", "mnist", "fid", LENET),
    ]
    changes = {r["metric"]: r["change_pct"] for r in payload["rows"] if r["verdict"] == "regression"}
    assert changes["train_throughput"] == pytest.approx(-30.0)
    assert changes["fid"] == pytest.approx(20.0)
    # without the gate the same comparison exits 0
    assert main(["compare", str(base), str(cur)]) == 0
    out = capsys.readouterr().out
    assert "**2 regressions**" in out and "### Regressions (2)" in out


def test_tolerance_override_silences_a_regression(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    scale_metric(cur, 1.2, "vae", "fid", extractor=LENET)
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression", "--tolerance", "fid=25")
    assert code == 0 and _named(payload, "regression") == []


def test_improvement_is_not_a_regression(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    scale_metric(cur, 1.3, "dcgan", "sample_throughput")
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression")
    assert code == 0
    assert _named(payload, "improvement") == [("dcgan", "", "mnist", "sample_throughput", "")]


def test_change_inside_seed_noise_is_not_a_regression_with_three_seeds(tmp_path):
    # 20% seed jitter: a 15% slowdown is beyond the 10% tolerance but inside the noise.
    base = load_run(make_run(tmp_path / "a", seeds=3, jitter=0.2))
    cur_dir = shutil.copytree(base.path, tmp_path / "b" / base.path.name)
    scale_metric(cur_dir, 0.85, "dcgan", "train_throughput")
    table = compare_runs(base, load_run(cur_dir))
    row = _row(table, "dcgan", "train_throughput")
    assert row["change_pct"] == pytest.approx(-15.0)
    assert row["verdict"] == "within noise" and row["p_value"] >= 0.05
    assert "regression" not in set(table["verdict"])


def test_change_beyond_seed_noise_is_a_regression_with_three_seeds(tmp_path):
    base = load_run(make_run(tmp_path / "a", seeds=3, jitter=0.01))
    cur_dir = shutil.copytree(base.path, tmp_path / "b" / base.path.name)
    scale_metric(cur_dir, 0.85, "dcgan", "train_throughput")
    table = compare_runs(base, load_run(cur_dir))
    assert table.loc[table["verdict"] == "regression", ["model", "metric"]].values.tolist() == [["dcgan", "train_throughput"]]


def test_welch_p_matches_scipy_and_handles_constant_sides():
    from scipy import stats

    a, b = (1.0, 2.0, 3.0), (2.0, 4.0, 7.0)
    assert welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    # one constant side is an ordinary Welch case: t = (5 - 13/3) / sqrt(19/9), df = 2, p = 1 - t / sqrt(t^2 + 2)
    assert welch_p((5.0, 5.0, 5.0), b) == pytest.approx(0.691393, abs=1e-6)
    assert welch_p((1.0, 1.0), (1.0, 1.0)) == 1.0
    assert welch_p((1.0, 1.0), (2.0, 2.0)) == 0.0
    assert welch_p((1.0,), (2.0, 3.0)) != welch_p((1.0,), (2.0, 3.0))  # NaN: one seed -> tolerance only


def _set_seed_values(run, model, metric, values, extractor=""):
    """Give a model's mnist metric these values, seed 0, 1, ... in turn."""
    frame = load_records(run)
    for seed, value in enumerate(values):
        hit = (frame["model"] == model) & (frame["metric"] == metric) & (frame["dataset"] == "mnist") \
            & (frame["extractor"] == extractor) & (frame["seed"] == seed)
        assert hit.any()
        frame.loc[hit, "value"] = value
    write_records(frame, run / "records.csv")


@pytest.mark.parametrize("current, p, verdict", [
    ((1300.0, 2000.0, 2700.0), 0.03289, "regression"),
    ((1000.0, 2000.0, 3000.0), 0.06658, "within noise"),
])
def test_welch_test_gates_at_alpha_0_05(tmp_path, current, p, verdict):
    """Welch p-values either side of 0.05 (t = 2100 / sqrt((100^2 + s^2) / 3), Welch-Satterthwaite df;
    from scipy.stats.ttest_ind): the same 51% slowdown is a regression or seed noise."""
    base = make_run(tmp_path / "a", seeds=3)
    _set_seed_values(base, "dcgan", "train_throughput", (4000.0, 4100.0, 4200.0))
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    _set_seed_values(cur, "dcgan", "train_throughput", current)
    row = _row(compare_runs(load_run(base), load_run(cur)), "dcgan", "train_throughput")
    assert row["change_pct"] == pytest.approx(-2100 / 41)
    assert row["p_value"] == pytest.approx(p, abs=5e-6)
    assert row["verdict"] == verdict


@pytest.mark.parametrize("metric, extractor, current, verdict, direction", [
    ("train_throughput", "", 90.0, "unchanged", "worse"),  # -10%: at the 10% performance tolerance
    ("train_throughput", "", 88.0, "regression", "worse"),
    ("train_throughput", "", 112.0, "improvement", "better"),
    ("fid", LENET, 105.0, "unchanged", "worse"),  # +5%: at the 5% quality tolerance
    ("fid", LENET, 106.0, "regression", "worse"),
    ("kid_std", LENET, 200.0, "changed", "worse"),  # a within-run spread: reported, never gated
])
def test_default_tolerances_decide_with_one_seed(tmp_path, metric, extractor, current, verdict, direction):
    base = make_run(tmp_path / "a")
    frame = load_records(base)
    write_records(pd.concat([frame, frame[frame["metric"] == "kid"].assign(metric="kid_std")]), base / "records.csv")
    _set_seed_values(base, "vae", metric, (100.0,), extractor)
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    _set_seed_values(cur, "vae", metric, (current,), extractor)
    table = compare_runs(load_run(base), load_run(cur))
    assert _verdict(table, "vae", metric, extractor) == (verdict, direction, current - 100.0)


@pytest.mark.parametrize("current, verdict, direction, change", [
    (0.0, "unchanged", "same", 0.0), (0.001, "regression", "worse", float("inf")),
])
def test_a_zero_baseline_is_unchanged_at_zero_and_infinitely_worse_above(tmp_path, current, verdict, direction, change):
    base = make_run(tmp_path / "a")
    _set_seed_values(base, "vae", "kid", (0.0,), LENET)
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    _set_seed_values(cur, "vae", "kid", (current,), LENET)
    assert _verdict(compare_runs(load_run(base), load_run(cur)), "vae", "kid", LENET) == (verdict, direction, change)


def test_rows_on_one_side_only_are_listed(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    frame = load_records(cur)
    frame = frame[~((frame["model"] == "wgan-gp") & (frame["metric"] == "recall"))]
    write_records(frame, cur / "records.csv")
    code, payload = _compare_json(capsys, base, cur)
    assert code == 0
    assert _named(payload, "baseline only") == [("wgan-gp", "", "mnist", "recall", LENET)]
    code, payload = _compare_json(capsys, cur, base)
    assert _named(payload, "current only") == [("wgan-gp", "", "mnist", "recall", LENET)]


def test_provenance_mismatch_is_not_comparable(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    frame = load_records(cur)
    frame.loc[frame["extractor"] == INCEPTION, "extractor_sha256"] = "c" * 64
    write_records(frame, cur / "records.csv")
    scale_metric(cur, 2.0, "vae", "fid", extractor=INCEPTION)  # would regress if compared
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression")
    assert code == 0
    incomparable = [r for r in payload["rows"] if r["verdict"] == "not comparable"]
    assert {r["extractor"] for r in incomparable} == {INCEPTION}
    assert all("extractor_sha256" in r["note"] for r in incomparable)


def test_other_sample_count_device_and_hardware_are_not_comparable(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = make_run(tmp_path / "b", n_samples=5000, device_name="NVIDIA A100")
    code, payload = _compare_json(capsys, base, cur)
    verdicts = {(r["metric"], r["extractor"]): (r["verdict"], r["note"]) for r in payload["rows"] if r["model"] == "dcgan"
                and r["dataset"] == "mnist"}
    assert verdicts[("fid", LENET)][0] == "not comparable" and "n_samples" in verdicts[("fid", LENET)][1]
    assert verdicts[("train_throughput", "")][0] == "not comparable" and "hardware" in verdicts[("train_throughput", "")][1]
    assert verdicts[("params", "")][0] == "unchanged"
    cpu = make_run(tmp_path / "c", device="cpu")
    code, payload = _compare_json(capsys, base, cpu)
    assert {r["verdict"] for r in payload["rows"]} == {"not comparable"}


def test_failed_job_in_current_run_counts_as_regression(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    frame = load_records(cur)
    frame.loc[(frame["model"] == "vae"), "status"] = "diverged"
    # a diverged diffusion training: the runner records the job once, without sampler rows
    ddpm = frame["model"] == "ddpm"
    frame = frame[~ddpm | (frame["variant"] == "")]
    frame.loc[frame["model"] == "ddpm", "status"] = "diverged"
    write_records(frame, cur / "records.csv")
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression")
    assert code == 1
    failed = {(r["model"], r["variant"]) for r in payload["rows"] if r["verdict"] == "failed"}
    assert failed == {("vae", ""), ("ddpm", ""), ("ddpm", "ddim-10"), ("ddpm", "ddim-50"), ("ddpm", "ddpm-1000")}
    assert not [r for r in payload["rows"] if r["verdict"] != "failed" and r["model"] in ("vae", "ddpm")]


def test_current_run_where_every_job_diverged_fails_the_gate(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    frame = load_records(cur)
    frame["status"] = "diverged"
    write_records(frame, cur / "records.csv")
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression")
    assert code == 1 and {r["verdict"] for r in payload["rows"]} == {"failed"}


def test_settings_are_reported_as_changed_not_gated(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    scale_metric(cur, 2.0, "dcgan", "params")
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression")
    assert code == 0 and _named(payload, "changed") == [("dcgan", "", "mnist", "params", "")]
    [row] = [r for r in payload["rows"] if r["verdict"] == "changed"]
    assert (row["direction"], row["tolerance_pct"], row["note"]) == ("changed", None, "")  # no tolerance applies


def test_scores_of_models_trained_for_other_step_counts_are_not_comparable(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    scale_metric(cur, 5.0, "vae", "train_steps")
    scale_metric(cur, 0.5, "vae", "fid", extractor=LENET)
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression")
    verdicts = {(r["metric"], r["extractor"]): (r["verdict"], r["note"]) for r in payload["rows"]
                if r["model"] == "vae" and r["dataset"] == "mnist"}
    assert verdicts[("fid", LENET)] == ("not comparable", "train_steps 2000 vs 10000")
    assert verdicts[("train_time", "")][0] == "not comparable"
    assert verdicts[("train_throughput", "")][0] == "unchanged"  # a per-step rate stays comparable
    assert verdicts[("train_steps", "")][0] == "changed"


def test_different_suites_compare_matching_rows_and_say_so(tmp_path, capsys):
    base = make_run(tmp_path / "a", suite="quick")
    cur = make_run(tmp_path / "b", suite="full")
    code = main(["compare", str(base), str(cur)])
    out = capsys.readouterr().out
    assert code == 0
    assert "different suites" in out and "**no regression**" in out


def _one_paragraph_error(capsys, argv):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert err.startswith("gmbench: error: ") and "\n\n" not in err and "Traceback" not in err
    return " ".join(err.split())  # the CLI wraps the paragraph at 100 columns


def test_bad_inputs_exit_2_with_one_paragraph(tmp_path, capsys):
    run = make_run(tmp_path / "a")
    not_a_run = tmp_path / "empty-folder"
    not_a_run.mkdir()
    assert "is not a gmbench run" in _one_paragraph_error(capsys, ["compare", str(not_a_run), str(run)])
    assert "does not exist" in _one_paragraph_error(capsys, ["compare", str(run), str(tmp_path / "nope")])

    broken = shutil.copytree(run, tmp_path / "broken" / run.name)
    frame = load_records(broken).drop(columns=["metric", "higher_is_better"])
    frame.to_csv(broken / "records.csv", index=False)
    assert "missing the record columns metric, higher_is_better" in _one_paragraph_error(
        capsys, ["compare", str(run), str(broken)])

    typo = shutil.copytree(run, tmp_path / "typo" / run.name)
    frame = load_records(typo).astype({"value": "string"})
    frame.loc[3, "value"] = "abc"
    frame.to_csv(typo / "records.csv", index=False)
    assert "value of the wrong type" in _one_paragraph_error(capsys, ["compare", str(run), str(typo)])

    empty = shutil.copytree(run, tmp_path / "empty" / run.name)
    load_records(empty).iloc[0:0].to_csv(empty / "records.csv", index=False)
    assert "holds no records" in _one_paragraph_error(capsys, ["compare", str(run), str(empty)])

    (empty / "records.csv").write_text("")
    assert "not a readable records CSV" in _one_paragraph_error(capsys, ["compare", str(run), str(empty)])

    assert "fid=3" in _one_paragraph_error(capsys, ["compare", str(run), str(run), "--tolerance", "fid"])
    assert "no metric 'fdi'" in _one_paragraph_error(capsys, ["compare", str(run), str(run), "--tolerance", "fdi=3"])


def test_runs_sharing_no_row_are_an_error(tmp_path, capsys):
    base = make_run(tmp_path / "a")
    other = shutil.copytree(base, tmp_path / "b" / base.name)
    frame = load_records(other)
    frame["dataset"] = "cifar10"
    frame["suite"] = "cifar"
    write_records(frame, other / "records.csv")
    err = _one_paragraph_error(capsys, ["compare", str(base), str(other)])
    assert "share no" in err and "different suites" in err


def _lose_seed(run, seed, status, models=("dcgan",)):
    """Mark one seed of some models failed/diverged as the runner does (only its training rows stay, without
    values but ``params``), or delete it (status None)."""
    frame = load_records(run)
    hit = frame["model"].isin(models) & (frame["seed"] == seed)
    if status is None:
        frame = frame[~hit]
    else:
        frame = frame[~hit | frame["metric"].isin(["params", "train_time"])]
        frame.loc[hit, "status"] = status
    write_records(frame, run / "records.csv")


@pytest.mark.parametrize("status", ["failed", "diverged", None])
def test_a_lost_seed_fails_the_gate_unless_allowed(tmp_path, status):
    base = load_run(make_run(tmp_path / "a", seeds=3))
    cur_dir = shutil.copytree(base.path, tmp_path / "b" / base.path.name)
    _lose_seed(cur_dir, 1, status)
    cur = load_run(cur_dir)
    table = compare_runs(base, cur)
    dcgan = table["model"] == "dcgan"
    assert set(table.loc[dcgan, "verdict"]) == {"failed"} and set(table.loc[~dcgan, "verdict"]) == {"unchanged"}
    assert set(table.loc[dcgan, "note"]) == {f"seed 1 {status or 'missing'} in the current run"}
    allowed = compare_runs(base, cur, allow_missing_seeds=True)
    assert set(allowed["verdict"]) == {"unchanged"}
    assert seeds_not_done(base, cur).to_dict("records") == [
        {"model": "began", "dataset": "mnist", "seeds": "0", "status": "diverged", "baseline": "diverged",
         "lost": False},
        {"model": "dcgan", "dataset": "fashion-mnist", "seeds": "1", "status": status or "missing", "baseline": "done",
         "lost": True},
        {"model": "dcgan", "dataset": "mnist", "seeds": "1", "status": status or "missing", "baseline": "done",
         "lost": True},
    ]


@pytest.mark.parametrize("statuses, note", [
    (("failed", "failed"), "seeds 1, 2 failed in the current run"),
    (("failed", None), "seed 1 failed; seed 2 missing in the current run"),
])
def test_the_note_names_every_lost_seed_and_its_status(tmp_path, statuses, note):
    base = load_run(make_run(tmp_path / "a", seeds=3))
    cur = shutil.copytree(base.path, tmp_path / "b" / base.path.name)
    for seed, status in enumerate(statuses, start=1):
        _lose_seed(cur, seed, status)
    row = _row(compare_runs(base, load_run(cur)), "dcgan", "fid", LENET)
    assert (row["verdict"], row["note"]) == ("failed", note)


def test_a_failed_sampler_loses_its_seed_though_the_training_is_done(tmp_path):
    base = load_run(make_run(tmp_path / "a", seeds=2))
    cur = shutil.copytree(base.path, tmp_path / "b" / base.path.name)
    frame = load_records(cur)
    frame.loc[(frame["variant"] == "ddim-10") & (frame["seed"] == 1), "status"] = "failed"
    write_records(frame, cur / "records.csv")
    table = compare_runs(base, load_run(cur))
    assert set(table.loc[table["model"] == "ddpm", "verdict"]) == {"failed"}
    assert {"model": "ddpm", "dataset": "mnist", "seeds": "1", "status": "failed", "baseline": "done",
            "lost": True} in seeds_not_done(base, load_run(cur)).to_dict("records")


def test_runs_without_a_failure_list_no_seed(tmp_path, capsys):
    base = make_run(tmp_path / "a", failed=False)
    assert seeds_not_done(load_run(base), load_run(base)).columns.tolist() == [
        "model", "dataset", "seeds", "status", "baseline", "lost"]
    code, payload = _compare_json(capsys, base, base, "--fail-on", "regression")
    assert code == 0 and payload["seeds_not_done"] == []


@pytest.mark.parametrize("suite, vae_lost", [("quick", False), ("full", True)])
def test_a_model_gone_from_the_current_run_is_lost_only_when_the_suites_match(tmp_path, suite, vae_lost):
    base = load_run(make_run(tmp_path / "a", seeds=2, suite="full"))
    cur_dir = make_run(tmp_path / "b", seeds=3, suite=suite)
    for seed in range(3):
        _lose_seed(cur_dir, seed, None, models=("vae",))
    _lose_seed(cur_dir, 1, None)
    _lose_seed(cur_dir, 2, "failed", models=("wgan-gp",))  # a seed the baseline did not run: listed, not lost
    listed = seeds_not_done(base, load_run(cur_dir))
    assert ["wgan-gp", "mnist", "2", "failed", "absent", False] in listed.values.tolist()
    assert listed.loc[listed["lost"], ["model", "dataset", "seeds", "status"]].values.tolist() == [
        ["dcgan", "fashion-mnist", "1", "missing"], ["dcgan", "mnist", "1", "missing"],
    ] + ([["vae", "mnist", "0, 1", "missing"]] if vae_lost else [])


def test_cli_gate_names_the_lost_seed_and_has_an_opt_out(tmp_path, capsys):
    base = make_run(tmp_path / "a", seeds=3)
    cur = shutil.copytree(base, tmp_path / "b" / base.name)
    _lose_seed(cur, 1, "failed")
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression")
    assert code == 1 and payload["regressed"] and payload["summary"]["failed"] > 0
    assert {"model": "dcgan", "dataset": "mnist", "seeds": "1", "status": "failed", "baseline": "done",
            "lost": True} in payload["seeds_not_done"]
    assert main(["compare", str(base), str(cur)]) == 0
    out = capsys.readouterr().out
    assert "### Seeds not done in the current run (3)" in out and "| dcgan | mnist | 1 | failed | done | True |" in out
    code, payload = _compare_json(capsys, base, cur, "--fail-on", "regression", "--allow-missing-seeds")
    assert code == 0 and not payload["regressed"] and payload["allow_missing_seeds"]
    assert payload["seeds_not_done"]  # still reported
