"""The sampler registry: a plugin sampler written here (DPM-Solver++(2M)) checked against diffusers and run as a
suite variant on the built-in ddpm, the errors for samplers a model cannot run, and the built-ins' samples
pinned to those of the code before the registry (bit for bit)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from gmbench.bench import runner
from gmbench.bench.resume_check import check_resumable
from gmbench.bench.suite import Variant, parse_suite
from gmbench.errors import GmbenchError
from gmbench.models.diffusion import DDPM, FlowMatching
from gmbench.registry import SAMPLERS, register_sampler
from gmbench.samplers.base import EpsDenoiser, Sampler
from gmbench.samplers.ddpm import sampling_timesteps
from gmbench.testing import check_sampler
from tests import test_sampler_reference as reference

denoiser, x_start = reference.denoiser, reference.x_start  # its fixtures: the same seeded network and noise

NAME = "dpm-solver++2m"


class DPMSolverPP2M(Sampler):
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2) on gmbench's timestep grid: data prediction
    x0 = (x - sigma eps) / alpha, steps in lambda = log(alpha / sigma), the previous step's x0 as the second-order
    correction; the first step (no previous x0) and the last (to alpha-bar 1, where x = x0) are first order, as in
    diffusers' DPMSolverMultistepScheduler with final_sigmas_type="zero". ``order = 1``: every step first order."""

    kind = "eps"
    defaults = {"order": 2}

    def sample(self, denoiser, x, steps, generator=None, order=2):
        abar = denoiser.alpha_bars
        ts = sampling_timesteps(len(abar), steps).tolist()
        x0_prev = h_prev = None
        for i, t in enumerate(ts):
            alpha, sigma = abar[t].sqrt(), (1 - abar[t]).sqrt()
            eps = denoiser.fn(x, torch.full((x.shape[0],), t, dtype=torch.float32, device=x.device))  # [B,C,H,W]
            x0 = (x - sigma * eps) / alpha  # [B,C,H,W]
            if i + 1 == len(ts):
                return x0
            alpha_next, sigma_next = abar[ts[i + 1]].sqrt(), (1 - abar[ts[i + 1]]).sqrt()
            h = (alpha_next / sigma_next).log() - (alpha / sigma).log()
            d = x0 if x0_prev is None or order == 1 else x0 + h / (2 * h_prev) * (x0 - x0_prev)
            x = sigma_next / sigma * x - alpha_next * torch.expm1(-h) * d
            x0_prev, h_prev = x0, h


@pytest.fixture(scope="module", autouse=True)
def plugin():
    register_sampler(NAME, DPMSolverPP2M())
    yield
    SAMPLERS.unregister(NAME)


def diffusers_dpm_solver(net, x, abar, timesteps, order):
    """diffusers' DPMSolverMultistepScheduler (dpmsolver++, midpoint) over custom ``timesteps`` with alpha_bars ``abar``."""
    sched = reference.diffusers.DPMSolverMultistepScheduler(num_train_timesteps=len(abar), solver_order=order,
                                                            algorithm_type="dpmsolver++", final_sigmas_type="zero")
    sched.alphas_cumprod = abar
    sched.set_timesteps(timesteps=timesteps.tolist())
    for t in sched.timesteps:
        eps = net(x, t.float().expand(x.shape[0]))  # [B,C,H,W]
        x = sched.step(eps, t, x).prev_sample
    return x


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("T,steps,atol", [(20, 5, 1e-5), (20, 10, 1e-5), (20, 20, 1e-5), (1000, 10, 1e-3), (1000, 50, 1e-3)])
def test_plugin_sampler_matches_diffusers_dpm_solver(denoiser, x_start, T, steps, atol, order):
    """diffusers keeps its sigmas in float32 and casts the sample to float32 in each step: at T = 1000 that rounding,
    amplified by 1/sqrt(abar_999) = 157 in x0, moved samples by 7e-5 (10 steps) and 5e-4 (50 steps) (measured;
    our own float32 run differs from float64 by 3e-4), hence 1e-3 there; at T = 20 (1/sqrt(abar) <= 1.11), 1e-5."""
    abar = reference.alpha_bars(T)
    out = SAMPLERS.get(NAME).sample(EpsDenoiser(denoiser, abar), x_start, steps, order=order)
    ref = diffusers_dpm_solver(denoiser, x_start, abar, sampling_timesteps(T, steps), order)
    torch.testing.assert_close(out, ref, rtol=0, atol=atol)


def test_plugin_sampler_keeps_the_contract():
    check_sampler(NAME, kind="eps")
    check_sampler(NAME, kind="eps", order=1)


SUITE = ("[budget]\nsteps = 1\n[metrics]\nn_samples = 2\n[timing]\nsample_batch = 2\nsample_min_seconds = 0\n"
         "[models.ddpm]\nchannels = [8, 8]\nnum_timesteps = 20\nsample_steps = 5\n{}\n")


def test_plugin_sampler_runs_as_a_suite_variant_on_the_builtin_ddpm(tmp_path):
    suite = parse_suite(SUITE.format(f'variants = [{{ name = "dpm2m-4", sampler = "{NAME}", sample_steps = 4, '
                                     'sampler_options = { order = 2 } }, { name = "ddim-3", sampler = "ddim", sample_steps = 3 }]'), "t")
    job, cpu = suite.jobs()[0], torch.device("cpu")
    ctx = runner.JobContext("r", tmp_path, cpu, suite.metrics, suite.timing, quiet=True, peak_flops={"fp32": 1e9})
    rec = runner.JobRecorder(job, ctx, "diffusion")
    model = runner.build_model(job, cpu)
    ran = {}
    for variant in (Variant("", {}),) + job.model.variants:
        runner.sample_variant(model, job, ctx, rec, variant)
        ran[variant.name] = (model.config.sampler, model.config.sampler_options)
    assert ran == {"": ("ddim", {}), "dpm2m-4": (NAME, {"order": 2}), "ddim-3": ("ddim", {})}  # options stay with their sampler
    nfe = {r["variant"]: r["value"] for r in rec.rows if r["metric"] == "nfe"}
    assert nfe == {"": 5, "dpm2m-4": 4, "ddim-3": 3}


@pytest.mark.parametrize("table, message", [
    ('sampler = "dpm"', r"Unknown sampler 'dpm'\..*Known samplers: ddim, ddpm, dpm-solver\+\+2m, euler, heun\."),
    ('sampler = "heun"', r"sampler 'heun' needs a velocity field .*but this model exposes an eps denoiser .*the samplers "
                         r"that run it: ddim, ddpm, dpm-solver\+\+2m\."),
    ('variants = [{ sampler = "euler" }]', r"variant 'sampler=euler': sampler 'euler' needs a velocity field"),
    (f'variants = [{{ sampler = "{NAME}", sampler_options = {{ ordr = 2 }} }}]', r"sampler_options of sampler 'dpm-solver\+\+2m': "
                                                                                r"no option 'ordr'; the sampler's options are order\."),
    ('sampler_options = { clip_sample = false }', r"sampler_options name clip_sample, which the config sets as its own "
                                                  r"field; set clip_sample = \.\.\. instead"),
    (f'sampler = "{NAME}"\nsampler_options = {{ order = "two" }}', r"order='two' has the wrong type; expected int"),
])
def test_a_sampler_the_model_cannot_run_is_refused_when_the_suite_loads(table, message):
    with pytest.raises(GmbenchError, match=message):
        parse_suite(SUITE.format(table), "t")


def test_variants_are_checked_as_the_runner_sets_them_on_the_entrys_config_one_after_the_other():
    parse_suite(SUITE.format(f'sampler = "{NAME}"\nvariants = [{{ name = "a", sampler_options = {{ order = 1 }} }}]'), "t")
    parse_suite(SUITE.format(f'variants = [{{ name = "a", sampler = "{NAME}" }}, {{ name = "b", sampler_options = {{ order = 1 }} }}]'), "t")


def test_sampler_options_from_the_command_line_are_coerced_to_the_options_types():
    suite = parse_suite(SUITE.format(""), "t", set_options={"ddpm": {"sampler": NAME, "sampler_options": "order=1"}})
    config = suite.jobs()[0].config()
    assert config.sampler_options == {"order": 1}  # as TOML's { order = 1 }, so --resume sees the same config
    assert DDPM(config).nfe == 5


def test_resume_reads_a_run_from_before_sampler_options_as_run_with_the_defaults():
    def manifest(**config):
        return {"settings": {"metrics": {"options": {}}}, "jobs": {"ddpm-mnist-s0": {"config": config, "speed": {}}}}

    assert check_resumable(Path("run"), manifest(sampler="ddim"), manifest(sampler="ddim", sampler_options={}), False) == []
    with pytest.raises(GmbenchError, match="config.sampler_options.order: unset in the run, 1 now"):
        check_resumable(Path("run"), manifest(sampler="ddim"), manifest(sampler="ddim", sampler_options={"order": 1}), False)


def seeded_tiny(cls):
    """The tiny model of ``cls`` from seed 0, its EMA output layer replaced by seeded weights (eps of order 1)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = cls(cls.tiny_config())
    with torch.no_grad():
        model.ema.out.weight.copy_(0.2 * torch.randn(model.ema.out.weight.shape, generator=torch.Generator().manual_seed(3)))
    return model


@pytest.mark.parametrize("cls, sampler, pinned", [
    (DDPM, "ddpm", [-0.2903710603713989, -0.9354620575904846, -0.9909771084785461, -0.12201090157032013]),
    (DDPM, "ddim", [0.2362290918827057, -0.24574820697307587, -0.45456746220588684, -0.616396427154541]),
    (FlowMatching, "euler", [0.4357951879501343, -1.0, -0.14066866040229797, -0.8153036832809448]),
    (FlowMatching, "heun", [0.6046571731567383, -1.0, -0.042899131774902344, -0.731559157371521]),
])
def test_builtin_samplers_give_the_samples_of_before_the_registry(cls, sampler, pinned):
    """Values printed by the models' own sample loops before the samplers moved to gmbench/samplers (commit b9b2a7e),
    with the tests' one intra-op thread (conftest.py): other thread counts and CPUs may round the U-Net differently."""
    model = seeded_tiny(cls)
    model.set_sampling(sampler=sampler)
    x = model.sample(2, generator=torch.Generator().manual_seed(4))  # [2,1,28,28]
    assert torch.equal(x[0, 0, 14, 10:14], torch.tensor(pinned))


def test_list_shows_samplers_with_kind_source_and_options(capsys):
    from gmbench.cli import main

    assert main(["list", "--json"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)["samplers"]}
    assert listed["heun"] == {"name": "heun", "kind": "velocity", "source": "built-in", "options": {}}
    assert listed["ddim"]["options"] == {"clip_sample": True, "clipped_eps": False, "eta": 0.0}
    assert listed[NAME] == {"name": NAME, "kind": "eps", "source": "tests",  # the package that registered it
                            "options": {"order": 2}}
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert re.search(rf"samplers:\n(  .*\n)*  {re.escape(NAME)} +eps +tests  \(options: order=2\)\n", text)
    assert re.search(r"\n  heun +velocity +built-in\n", text)
    assert text.index("models:") < text.index("samplers:") < text.index("datasets:")


def test_register_sampler_takes_an_instance_or_decorates_a_class_and_refuses_anything_else():
    @register_sampler("test-decorated")
    class Decorated(DPMSolverPP2M):
        pass

    try:
        assert isinstance(Decorated, type) and type(SAMPLERS.get("test-decorated")) is Decorated
        with pytest.raises(GmbenchError, match="expected an instance of a gmbench.samplers.base.Sampler subclass"):
            register_sampler("test-function", lambda denoiser, x, steps: x)
    finally:
        SAMPLERS.unregister("test-decorated")
