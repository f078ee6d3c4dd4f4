"""The budget's learning-rate schedule: the factor's formula, the harness applying it to every optimiser
of a model, the suite refusing a schedule it cannot size, and a resumed run continuing on the same lrs."""
import json
import math

import pytest
import torch

from gmbench.bench.lr_schedule import lr_factor, set_lr_factor
from gmbench.bench.runner import scheduled_step
from gmbench.bench.suite import Budget, parse_suite
from gmbench.cli import main
from gmbench.errors import GmbenchError
from gmbench.models.vae import TwoStageVAE
from tests.conftest import requires_mnist
from tests.test_run import assert_same_weights, kill_mid_training, quality_rows


def test_factor_follows_the_formula_at_known_steps():
    assert [lr_factor("constant", s, 100) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert lr_factor("cosine", 0, 1000) == 1.0
    assert lr_factor("cosine", 500, 1000) == pytest.approx(0.5)
    assert lr_factor("cosine", 750, 1000) == pytest.approx(0.5 * (1 + math.cos(0.75 * math.pi)))  # 0.1464
    assert lr_factor("cosine", 999, 1000) == pytest.approx(2.467e-6, rel=1e-3)  # the last update: almost 0
    assert lr_factor("linear", 250, 1000) == 0.75 and lr_factor("linear", 999, 1000) == pytest.approx(1e-3)
    # warm-up: (step + 1) / warmup over the first 10 updates, then the decay over the remaining 90
    assert [lr_factor("cosine", s, 100, 10) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_factor("cosine", 10, 100, 10) == 1.0 and lr_factor("linear", 55, 100, 10) == 0.5
    assert [lr_factor("constant", s, 100, 4) for s in (0, 3, 50)] == [0.25, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        lr_factor("step", 0, 10)


def test_harness_scales_every_optimiser_from_its_base_lr():
    model = TwoStageVAE(TwoStageVAE.tiny_config())  # two optimisers: opt (lr) and opt2 (stage2_lr)
    model.opt2.param_groups[0]["lr"] = 5e-4
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    budget = Budget(steps=100, lr_schedule="linear")
    for step in (0, 30, 30, 75):  # the factor applies to the base lr, not to the last one
        scheduled_step(model, x, budget, step)
    assert model.opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.25)
    assert model.opt2.param_groups[0]["lr"] == pytest.approx(5e-4 * 0.25)
    assert model.opt.param_groups[0]["initial_lr"] == 1e-3 and model.opt2.param_groups[0]["initial_lr"] == 5e-4
    set_lr_factor([model.opt], 1.0)
    assert model.opt.param_groups[0]["lr"] == 1e-3


def test_constant_leaves_the_optimisers_untouched():
    torch.manual_seed(0)
    a = TwoStageVAE(TwoStageVAE.tiny_config())
    b = TwoStageVAE(TwoStageVAE.tiny_config())
    b.load_state_dict(a.state_dict())
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    for step in range(3):
        torch.manual_seed(step)
        scheduled_step(a, x, Budget(steps=3), step)
        torch.manual_seed(step)
        b.train_step(x)
    assert "initial_lr" not in a.opt.param_groups[0] and a.opt.param_groups[0]["lr"] == 1e-3
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


SUITE = """
[budget]
steps = 50
[models.vae]
budget = {{ {budget} }}
"""


def test_suite_records_the_schedule_and_refuses_one_it_cannot_size():
    suite = parse_suite(SUITE.format(budget='lr_schedule = "cosine", lr_warmup = 5'), "t")
    assert suite.models[0].budget == Budget(steps=50, lr_schedule="cosine", lr_warmup=5)
    from gmbench.bench.resume_check import resolved_jobs
    assert resolved_jobs(suite)["jobs"]["vae-mnist-s0"]["budget"]["lr_schedule"] == "cosine"  # in the manifest
    assert parse_suite(SUITE.format(budget="batch_size = 8"), "t").models[0].budget.lr_schedule == "constant"
    with pytest.raises(GmbenchError, match="seconds-only budget has no known length"):
        parse_suite(SUITE.format(budget='steps = "none", seconds = 10, lr_schedule = "linear"'), "t")
    with pytest.raises(GmbenchError, match="lr_warmup 50 must be below"):
        parse_suite(SUITE.format(budget='lr_schedule = "linear", lr_warmup = 50'), "t")
    with pytest.raises(GmbenchError, match="lr_schedule must be one of"):
        parse_suite(SUITE.format(budget='lr_schedule = "step"'), "t")
    warm = parse_suite(SUITE.format(budget='steps = "none", seconds = 10, lr_warmup = 5'), "t").models[0].budget
    assert warm.lr_schedule == "constant" and warm.lr_warmup == 5  # a warm-up alone needs no known length


@requires_mnist
def test_run_killed_mid_training_resumes_on_the_same_learning_rates(tmp_path):
    """With a cosine schedule, SIGKILL during training and --resume end with the weights and quality rows of an
    uninterrupted run (the factor is a pure function of the restored step), which differ from a constant lr's."""
    schedule = ["--models", "dcgan", "--set", "budget.lr_schedule=cosine", "--set", "budget.lr_warmup=2"]
    whole, constant, out = tmp_path / "whole", tmp_path / "constant", tmp_path / "killed"
    assert main(["run", "smoke", "--out", str(whole), "--quiet", *schedule]) == 0
    assert main(["run", "smoke", "--out", str(constant), "--quiet", "--models", "dcgan"]) == 0
    with pytest.raises(AssertionError):
        assert_same_weights(whole, constant, "dcgan-mnist-s0")
    kill_mid_training(out, *schedule)
    assert main(["run", "smoke", "--out", str(out), "--resume", "--quiet", *schedule]) == 0
    record = json.loads((out / "jobs" / "dcgan-mnist-s0.json").read_text())
    assert record["resumed_from_step"] in (2, 7)
    assert_same_weights(whole, out, "dcgan-mnist-s0")
    assert quality_rows(out) == quality_rows(whole)
