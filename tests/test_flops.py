"""FLOPs per image, the measured peak and MFU: known answers, untouched training, rows in a run's records."""
from __future__ import annotations

import copy
import json
import random
import shutil
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from gmbench.bench import flops
from gmbench.bench.timing import Summary
from gmbench.cli import main
from gmbench.models.base import GenerativeModel
from gmbench.models.diffusion import DDPM, FlowMatching
from gmbench.registry import MODELS
from gmbench.report import metrics_info, tables
from gmbench.report.compare import compare_runs
from gmbench.report.records import load_records
from gmbench.report.runs import load_run
from tests.conftest import requires_mnist
from tests.report_runs import scale_metric
from tests.test_run import assert_same_weights

B, IN, HIDDEN = 6, 4, 5  # batch, pixels of a 1x2x2 image, hidden units


@dataclass(frozen=True)
class TinyMLPConfig:
    steps: int = 3  # network calls per sample
    sampling_fields = ("steps",)


class TinyMLP(GenerativeModel):
    """Linear(4, 5) -> ReLU -> Linear(5, 4) as a denoiser: a train step with noise and Adam, a sampler of
    ``steps`` network calls."""

    Config = TinyMLPConfig

    def __init__(self, config=None, image_shape=(1, 2, 2)):
        super().__init__(config, image_shape)
        self.net = nn.Sequential(nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, IN))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=0.1)

    def train_step(self, x):
        noisy = (x + torch.randn_like(x)).flatten(1)  # [B,4]; draws from the global RNG
        loss = (self.net(noisy) - x.flatten(1)).pow(2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

    @property
    def nfe(self):
        return self.config.steps

    @torch.no_grad()
    def sample(self, n, generator=None):
        x = self.randn(n, IN, generator=generator)  # [n,4]
        for _ in range(self.config.steps):
            x = self.net(x)
        return x.tanh().view(n, *self.image_shape)


def test_train_step_flops_of_an_mlp_are_the_hand_formula():
    """Forward 2*in*out per image and Linear; backward 2*in*out for the weight gradient, and 2*in*out more for
    the input gradient except at the first layer, whose input needs none; Adam, ReLU and the loss: not counted."""
    x = torch.rand(B, 1, 2, 2) * 2 - 1
    first, second = 2 * IN * HIDDEN, 2 * HIDDEN * IN
    assert flops.train_flops_per_image(TinyMLP(), x) == 2 * first + 3 * second  # 200 per image


def test_sample_flops_are_steps_times_one_network_call():
    model = TinyMLP()
    one_call = 2 * IN * HIDDEN + 2 * HIDDEN * IN
    assert flops.sample_flops_per_image(model) == 3 * one_call
    model.set_sampling(steps=7)
    assert flops.sample_flops_per_image(model, n=5) == 7 * one_call


@pytest.mark.parametrize("cls, sampling", [(DDPM, {"sampler": "ddim"}), (DDPM, {"sampler": "ddpm"}),
                                           (FlowMatching, {"sampler": "euler"}), (FlowMatching, {"sampler": "heun"})])
def test_diffusion_sample_flops_are_nfe_network_calls(cls, sampling):
    model = cls(cls.tiny_config())
    model.set_sampling(**sampling)
    x, t = torch.zeros(2, 1, 28, 28), torch.full((2,), 10.0)  # [2,C,H,W], [2]
    one_call = flops.counted_flops(lambda: model.ema_model(x, t)) / 2
    assert one_call > 0 and flops.sample_flops_per_image(model) == model.nfe * one_call


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_can_be_counted(name):
    """wgan-gp's gradient penalty (torch.autograd.grad on a leaf) breaks FlopCounterMode's module tracker."""
    cls = MODELS.get(name)
    model = cls(cls.tiny_config())
    if model.trainable:
        assert flops.train_flops_per_image(model, torch.rand(10, 1, 28, 28) * 2 - 1) > 0
    else:
        model.fit_data(torch.rand(50, 1, 28, 28) * 2 - 1)
    assert flops.sample_flops_per_image(model) >= 0  # real-data's samples are training images: 0 FLOPs


def test_mfu_is_achieved_flops_over_the_peak_in_percent():
    assert flops.mfu(images_per_s=100.0, flops_per_image=2e9, peak=1e12) == pytest.approx(20.0)


def _states(model: GenerativeModel) -> tuple:
    return (copy.deepcopy(model.training_state()), model.training, torch.get_rng_state(), random.getstate(),
            np.random.get_state()[1].copy())


def _assert_equal_states(a: tuple, b: tuple) -> None:
    (state_a, mode_a, *rng_a), (state_b, mode_b, *rng_b) = a, b
    torch.testing.assert_close(state_a, state_b, rtol=0, atol=0)
    assert mode_a == mode_b and torch.equal(rng_a[0], rng_b[0]) and rng_a[1] == rng_b[1]
    assert np.array_equal(rng_a[2], rng_b[2])


def test_counting_leaves_the_model_its_optimizer_and_the_rng_streams_untouched():
    torch.manual_seed(0)
    model = TinyMLP()
    x = torch.rand(B, 1, 2, 2) * 2 - 1
    model.train_step(x)  # Adam has moments to disturb
    random.random(), np.random.rand()  # the Python and NumPy streams have moved too
    before = _states(model)
    flops.train_flops_per_image(model, x)
    flops.sample_flops_per_image(model)
    _assert_equal_states(before, _states(model))


def test_measured_peak_is_two_n_cubed_over_the_median_matmul_time(monkeypatch):
    calls = []

    def fake_timing(work, device, warmup, repeats):
        calls.append((work().shape, device, warmup, repeats))
        return Summary(0.25, 0.0, repeats)

    monkeypatch.setattr(flops, "time_repeated", fake_timing)
    assert flops.measured_peak(torch.device("cpu"), "bf16") == 2 * 2048**3 / 0.25
    assert calls == [((2048, 2048), torch.device("cpu"), flops.PEAK_WARMUP, flops.PEAK_REPEATS)]


def test_peaks_measure_only_the_dtypes_not_known(monkeypatch):
    monkeypatch.setattr(flops, "measured_peak", lambda device, dtype: {"fp32": 1e11, "bf16": 3e11}[dtype])
    assert flops.peaks(torch.device("cpu"), ["bf16", "fp32"], {"fp32": 5e10}) == {"fp32": 5e10, "bf16": 3e11}


# --- in a run ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def counted_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "counted"
    assert main(["run", "smoke", "--out", str(out), "--quiet", "--set", "curve.every_steps=none",
                 "--set", "curve.targets="]) == 0
    return out


@requires_mnist
def test_flops_and_mfu_rows_are_in_the_records(counted_run):
    records = load_records(counted_run).set_index("metric")
    peak = json.loads((counted_run / "manifest.json").read_text())["peak_flops"]
    assert set(peak) == {"fp32"} and peak["fp32"] > 0
    for phase in ("train", "sample"):
        count, utilisation = records.loc[f"{phase}_flops"], records.loc[f"{phase}_mfu"]
        assert count["value"] > 0 and count["unit"] == "FLOP/image" and pd.isna(count["higher_is_better"])
        assert utilisation["unit"] == "%" and bool(utilisation["higher_is_better"])
        expected = flops.mfu(records.loc[f"{phase}_throughput", "value"], count["value"], peak["fp32"])
        assert utilisation["value"] == pytest.approx(expected, rel=1e-12)


@requires_mnist
def test_counting_changes_neither_the_trained_weights_nor_the_scores(counted_run, tmp_path, monkeypatch):
    from gmbench.bench import runner

    monkeypatch.setattr(runner, "train_flops_per_image", lambda model, x: 1.0)  # counting off
    monkeypatch.setattr(runner, "sample_flops_per_image", lambda model: 1.0)
    out = tmp_path / "uncounted"
    assert main(["run", "smoke", "--out", str(out), "--quiet", "--set", "curve.every_steps=none",
                 "--set", "curve.targets="]) == 0
    assert_same_weights(counted_run, out, "dcgan-mnist-s0")
    fid = [load_records(run).query("metric == 'fid'")["value"].tolist() for run in (counted_run, out)]
    assert fid[0] == fid[1] and len(fid[0]) == 1


@requires_mnist
def test_mfu_sits_beside_its_throughput_and_compare_gates_it(counted_run, tmp_path):
    table = tables.dataset_table(tables.summarise(load_records(counted_run)), "mnist").text
    columns = list(table.columns)
    for phase in ("train", "sample"):
        assert columns[columns.index(f"{phase}_throughput (images/s)") + 1] == f"{phase}_mfu (%)"
    current = shutil.copytree(counted_run, tmp_path / "current")
    scale_metric(current, 0.7, "dcgan", "train_mfu")
    scale_metric(current, 2.0, "dcgan", "train_flops")
    compared = compare_runs(load_run(counted_run), load_run(current)).set_index("metric")
    assert compared.loc["train_mfu", "verdict"] == "regression" and compared.loc["train_mfu", "tolerance_pct"] == 10.0
    assert compared.loc["sample_mfu", "verdict"] == "unchanged"
    assert compared.loc["train_flops", "verdict"] == "changed"  # a setting: reported, never gated
    assert {metrics_info.kind(f"{phase}_flops") for phase in ("train", "sample")} == {"setting"}


def test_each_sampler_variant_records_its_own_flops_and_mfu(tmp_path):
    from gmbench.bench import runner
    from gmbench.bench.suite import Variant, parse_suite

    suite = parse_suite("[budget]\nsteps = 1\n[metrics]\nn_samples = 2\n[timing]\nsample_batch = 2\nsample_min_seconds = 0\n"
                        "[models.ddpm]\nchannels = [8, 8]\nnum_timesteps = 20\nsample_steps = 5\n", "t")
    job, cpu = suite.jobs()[0], torch.device("cpu")
    ctx = runner.JobContext("r", tmp_path, cpu, suite.metrics, suite.timing, quiet=True, peak_flops={"fp32": 1e9})
    rec = runner.JobRecorder(job, ctx, "diffusion")
    model = runner.build_model(job, cpu)
    x, t = torch.zeros(1, 1, 28, 28), torch.full((1,), 10.0)  # [1,C,H,W], [1]
    one_call = flops.counted_flops(lambda: model.ema_model(x, t))
    for variant in (Variant("", {}), Variant("ddim-2", {"sample_steps": 2})):
        runner.sample_variant(model, job, ctx, rec, variant)
    rows = {(r["metric"], r["variant"]): r["value"] for r in rec.rows}
    for variant, nfe in (("", 5), ("ddim-2", 2)):
        assert rows["sample_flops", variant] == nfe * one_call
        assert rows["sample_mfu", variant] == flops.mfu(rows["sample_throughput", variant], nfe * one_call, 1e9)


def test_a_run_measures_the_peak_of_each_dtype_its_jobs_use():
    from gmbench.bench.session import dtypes_in_use
    from gmbench.bench.suite import parse_suite

    text = "[budget]\nsteps = 1\n[models.dcgan]\n[models.ddpm]\n"
    cpu = torch.device("cpu")
    assert dtypes_in_use(parse_suite(text, "t"), cpu) == ["fp32"]
    assert dtypes_in_use(parse_suite(text + "bf16 = true\n", "t"), cpu) == ["bf16", "fp32"]


@requires_mnist
def test_the_report_explains_mfu_and_names_the_peak(counted_run):
    from gmbench.report.render import legend

    records, manifest = load_records(counted_run), json.loads((counted_run / "manifest.json").read_text())
    assert "Columns *_mfu: model FLOPs utilisation" in legend(tables.summarise(records))
    assert f"measured peak fp32 {manifest['peak_flops']['fp32']:.3g} FLOP/s" in tables.provenance(records, [manifest], "mnist")[-1]


@requires_mnist
def test_a_resumed_run_keeps_its_recorded_peak(counted_run, tmp_path, monkeypatch):
    run = shutil.copytree(counted_run, tmp_path / "run")
    before = json.loads((run / "manifest.json").read_text())
    monkeypatch.setattr(flops, "measured_peak", lambda device, dtype: 1.0)
    assert main(["run", "smoke", "--out", str(run), "--resume", "--quiet"]) == 0
    after = json.loads((run / "manifest.json").read_text())
    assert after["peak_flops"] == before["peak_flops"] and after["resumed"]
    assert after["peak_flops_method"] == before["peak_flops_method"]
