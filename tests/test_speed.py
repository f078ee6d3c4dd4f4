"""Speed options (gmbench.bench.speed) and the faster code paths compute what the plain ones do, are
recorded in every row and the manifest, and bad settings are one-paragraph errors."""
import json

import pandas as pd
import pytest
import torch

from gmbench.bench.speed import SpeedSettings, apply_speed, speed_label
from gmbench.bench.suite import parse_suite
from gmbench.cli import main
from gmbench.errors import GmbenchError
from gmbench.metrics.lenet import LeNet, build_mnist_lenet, inference_body
from gmbench.models.gan import DCGAN, GANMLP, discriminator_loss, generator_loss_nonsaturating
from gmbench.report.records import COLUMNS, load_records
from tests.conftest import requires_mnist


def _images(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # [n,1,28,28]


def _trained(cls, speed: SpeedSettings, steps: int = 3) -> tuple[torch.nn.Module, list[dict]]:
    torch.manual_seed(0)
    model = cls(cls.tiny_config())
    apply_speed(model, speed, torch.device("cpu"))
    torch.manual_seed(1)
    return model, [model.train_step(_images(seed=i)) for i in range(steps)]


@pytest.mark.parametrize("optimizer", ["foreach", "fused"])
def test_foreach_and_fused_adam_train_like_the_default(optimizer):
    plain, _ = _trained(GANMLP, SpeedSettings())
    fast, _ = _trained(GANMLP, SpeedSettings(optimizer=optimizer))
    assert all(g["foreach"] == (optimizer == "foreach") and g["fused"] == (optimizer == "fused")
               for g in fast.opt_g.param_groups + fast.opt_d.param_groups)
    for (name, a), b in zip(plain.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6, msg=name)


def _textbook_step(model, x: torch.Tensor) -> None:
    """The GAN step as first written: D on real and fake in two calls, the generator's loss backpropagated
    into every parameter (the discriminator's gradients then dropped)."""
    fake = model.generator(model.randn(x.shape[0], model.config.z_dim))  # [B,C,H,W]
    loss_d = discriminator_loss(model.discriminator(x), model.discriminator(fake.detach()))
    model.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    model.opt_d.step()
    loss_g = generator_loss_nonsaturating(model.discriminator(fake))
    model.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    model.opt_g.step()


@pytest.mark.parametrize("cls", [GANMLP, DCGAN])
def test_gan_step_equals_the_textbook_step(cls):
    """One discriminator call on real and fake (gan-mlp) and a generator backward that stops at the
    generator leave the weights where the textbook step puts them."""
    models = []
    for step in (cls.train_step, _textbook_step):
        torch.manual_seed(0)
        model = cls(cls.tiny_config())
        torch.manual_seed(1)
        for i in range(3):
            step(model, _images(seed=i))
        models.append(model)
    for (name, a), b in zip(models[1].state_dict().items(), models[0].state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)


def test_compiled_networks_give_the_same_losses():
    _, plain = _trained(GANMLP, SpeedSettings(), steps=2)
    model, fast = _trained(GANMLP, SpeedSettings(compile=True), steps=2)
    for a, b in zip(plain, fast):
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    assert all(k.startswith(("generator.", "discriminator.")) and "_orig_mod" not in k for k in model.state_dict())


def test_lenet_inference_body_gives_the_same_features():
    torch.manual_seed(0)
    net = LeNet()
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
    net.eval()
    x = _images(64)
    with torch.no_grad():
        expected = net.body(x)  # [64,128]
        body = inference_body(net.body)
        got = body(x.contiguous(memory_format=torch.channels_last))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in body)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_shipped_lenet_extractor_runs_the_folded_body():
    extractor = build_mnist_lenet()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in extractor.modules())


def test_speed_label_names_the_options_in_a_fixed_order():
    from gmbench.models.diffusion import DDPM
    from gmbench.models.reference import RealData

    ddpm = DDPM(DDPM.Config(channels_last=True, **DDPM.tiny_overrides))
    assert speed_label(GANMLP(GANMLP.tiny_config()), SpeedSettings()) == "plain"
    assert speed_label(ddpm, SpeedSettings(optimizer="fused", compile=True)) == "compile+fused+channels_last"
    assert speed_label(RealData(), SpeedSettings(optimizer="fused")) == "plain"  # no optimizer to fuse


SUITE = """
[budget]
steps = 4
[timing]
warmup_steps = 1
block_steps = 2
[speed]
optimizer = "foreach"
[models.gan-mlp]
[models.wgan-gp]
speed = { optimizer = "default" }
"""


def test_suite_speed_table_model_override_and_set_option():
    suite = parse_suite(SUITE, "s")
    assert [m.speed for m in suite.models] == [SpeedSettings(optimizer="foreach"), SpeedSettings()]
    suite = parse_suite(SUITE, "s", set_options={"speed": {"optimizer": "fused"}})
    assert {m.speed.optimizer for m in suite.models} == {"fused"}


@pytest.mark.parametrize("options, message", [
    ({"speed": {"compile": "true"}}, "compile is not available for this model"),  # wgan-gp: double backward
    ({"speed": {"optimizer": "fast"}}, "optimizer='fast' must be one of"),
    ({"speed": {"compile": "true"}, "timing": {"warmup_steps": "0"}}, "needs timing.warmup_steps >= 1"),
])
def test_bad_speed_settings_are_one_paragraph_errors(options, message):
    suite = SUITE if "timing" not in options else SUITE.replace("[models.wgan-gp]\n", "")  # no warm-up block
    with pytest.raises(GmbenchError, match=message) as err:
        parse_suite(suite, "s", set_options=options)
    assert "\n" not in str(err.value)


def test_cuda_graphs_on_a_cpu_is_refused():
    with pytest.raises(GmbenchError, match="cuda_graphs needs a CUDA device"):
        apply_speed(GANMLP(GANMLP.tiny_config()), SpeedSettings(cuda_graphs=True), torch.device("cpu"))


@requires_mnist
def test_speed_options_are_recorded_in_every_row_and_the_manifest(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "smoke", "--out", str(out), "--quiet", "--set", "budget.steps=4",
                 "--set", "speed.optimizer=fused", "--set", "curve.every_steps=none", "--set", "curve.targets="]) == 0
    records = load_records(out)
    assert set(records["speed"]) == {"fused"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["jobs"]["dcgan-mnist-s0"]["speed"] == {"optimizer": "fused", "compile": False, "cuda_graphs": False}


def test_records_written_before_the_speed_column_load_with_it_empty(tmp_path):
    old = [c for c in COLUMNS if c != "speed"]
    row = {c: "" for c in old} | {"run_id": "r", "seed": 0, "metric": "fid", "value": 1.0, "higher_is_better": False,
                                  "n_samples": 10}
    pd.DataFrame([row], columns=old).to_csv(tmp_path / "records.csv", index=False)
    records = load_records(tmp_path / "records.csv")
    assert list(records.columns) == COLUMNS and records["speed"].tolist() == [""]
