"""benchmarks/sampler_table.py: the suite it builds from the quick suite, and its table from records."""
from __future__ import annotations

import pytest

from benchmarks.sampler_table import REFERENCE, SAMPLERS, sampler_suite, sampler_table
from gmbench.bench.suite import load_suite
from gmbench.report.records import to_frame


def test_sampler_suite_is_the_quick_ddpm_trained_longer_without_a_curve():
    suite = sampler_suite(steps_factor=2.0, n=1000)
    quick = next(m for m in load_suite("quick").models if m.name == "ddpm")
    [entry] = suite.models
    assert entry.budget.steps == 2 * quick.budget.steps and entry.budget.seconds is None
    assert {k: v for k, v in entry.overrides.items() if k not in ("sampler", "sample_steps")} == \
        {k: v for k, v in quick.overrides.items() if k not in ("sampler", "sample_steps")}
    assert (entry.overrides["sampler"], entry.overrides["sample_steps"]) == ("ddpm", 1000)
    assert [v.name for v in entry.variants] == list(SAMPLERS) and all(v.n_samples == 1000 for v in entry.variants)
    assert not entry.curve.enabled  # a curve point would sample DDPM-1000
    assert suite.metrics.n_samples == 1000 and "fid" in suite.metrics.names


def test_sampler_table_ratios_and_claim():
    fids = {"": 100.0, "ancestral-50": 104.0, "ddim-10": 125.0, "ddim-20": 108.0, "ddim-50": 95.0, "ddim-50-plain-step": 150.0,
            "ddim-1000": 90.0}
    nfes = {"": 1000, "ancestral-50": 50, "ddim-10": 10, "ddim-20": 20, "ddim-50": 50, "ddim-50-plain-step": 50, "ddim-1000": 1000}
    rows = [dict(model="ddpm", variant=v, metric=m, value=x, status="done")
            for v in fids for m, x in (("fid", fids[v]), ("nfe", nfes[v]), ("kid", 0.1), ("precision", 0.5),
                                       ("recall", 0.5), ("sample_throughput", 1000.0 / nfes[v]))]
    table = sampler_table(to_frame(rows)).set_index("sampler")
    assert list(table.index) == [REFERENCE, *SAMPLERS]
    assert table["fid_vs_ddpm1000_pct"].to_dict() == pytest.approx({REFERENCE: 0, "ancestral-50": 4, "ddim-10": 25,
                                                                     "ddim-20": 8, "ddim-50": -5, "ddim-50-plain-step": 50,
                                                                     "ddim-1000": -10})
    assert table["claim"].to_dict() == {REFERENCE: "", "ancestral-50": "", "ddim-10": "outside", "ddim-20": "within",
                                        "ddim-50": "", "ddim-50-plain-step": "", "ddim-1000": ""}  # the claim is about NFE <= 20
