"""The one contract every registered model passes unchanged (DESIGN.md, "Contracts").

Each model is built from ``cls.tiny_config()`` (its defaults with its declared ``tiny_overrides``),
so this file never needs a per-model entry: a new model is done when it passes as it stands.
A third-party model registered through a ``gmbench.plugins`` entry point runs the same checks.
"""
from __future__ import annotations

import dataclasses
import io
import textwrap

import pytest
import torch

from gmbench import registry
from gmbench.registry import MODELS

N_DATA, BATCH, STEPS, N_SAMPLES = 64, 16, 3, 6


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _fresh(cls, seed: int):
    torch.manual_seed(seed)  # different initial weights per seed
    return cls(cls.tiny_config())


def check_contract(cls) -> None:
    torch.manual_seed(0)
    data = torch.rand(N_DATA, 1, 28, 28) * 2 - 1  # [N,1,28,28] in [-1,1]
    model = _fresh(cls, 0)
    assert isinstance(model.family, str) and model.family
    assert dataclasses.is_dataclass(model.config)
    model.fit_data(data)

    if cls.trainable:
        for i in range(STEPS):
            losses = model.train_step(data[i * BATCH:(i + 1) * BATCH])
            assert isinstance(losses, dict) and losses
            for name, value in losses.items():
                assert isinstance(value, torch.Tensor) and value.dim() == 0, name
                assert not value.requires_grad, f"{name} is not detached"
                assert torch.isfinite(value), f"{name} = {value}"
        for name, p in model.named_parameters():
            assert torch.isfinite(p).all(), f"parameter {name} is not finite after training"

    x = model.sample(N_SAMPLES, generator=_generator(1))
    assert x.shape == (N_SAMPLES, 1, 28, 28)
    assert x.dtype.is_floating_point
    assert torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, model.sample(N_SAMPLES, generator=_generator(1))), "same seed, different samples"
    assert not torch.equal(x, model.sample(N_SAMPLES, generator=_generator(2))), "samples ignore the generator"

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = _fresh(cls, 123)
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(x, loaded.sample(N_SAMPLES, generator=_generator(1))), "state_dict round trip changed samples"

    assert isinstance(model.nfe, int) and model.nfe >= 1
    for field in getattr(cls.Config, "sampling_fields", ()):  # sampling settings are read at call time
        assert field in {f.name for f in dataclasses.fields(cls.Config)}
    if "sample_steps" in getattr(cls.Config, "sampling_fields", ()):
        steps = model.config.sample_steps
        before = model.nfe
        model.set_sampling(sample_steps=steps + 1)
        assert model.nfe > before, "nfe must follow sample_steps"
        assert model.sample(2, generator=_generator(1)).shape == (2, 1, 28, 28)
    if cls.trainable:
        check_training_state(cls, data)


def _train(model, data: torch.Tensor, seed: int) -> None:
    torch.manual_seed(seed)  # the global stream train_step may draw from (GAN noise, reparameterisation)
    for i in range(STEPS):
        model.train_step(data[i * BATCH:(i + 1) * BATCH])


def check_training_state(cls, data: torch.Tensor) -> None:
    """A model restored from ``training_state`` (through torch.save and torch.load(weights_only=True)) into a
    fresh one trains on exactly as the original: networks, optimizers, EMA and host counters all round-trip."""
    model = _fresh(cls, 0)
    model.fit_data(data)
    _train(model, data, seed=1)
    buffer = io.BytesIO()
    torch.save(model.training_state(), buffer)
    buffer.seek(0)
    resumed = _fresh(cls, 123)
    resumed.fit_data(data)
    resumed.load_training_state(torch.load(buffer, weights_only=True))
    for m in (model, resumed):
        _train(m, data.flip(0), seed=2)
    expected, got = model.state_dict(), resumed.state_dict()
    for name, value in expected.items():
        assert torch.equal(value, got[name]), f"{name} differs after training on from a restored training state"


@pytest.mark.parametrize("name", MODELS.names())
def test_model_contract(name):
    check_contract(MODELS.get(name))


OPTIONS_THE_SUITES_USE = [
    ("gan-mlp", {"batch_norm_g": True}),
    ("ddpm", {"noise_sampling": "logit-normal", "channels": (8, 8, 8), "sampler": "ddpm"}),
    ("flow-matching", {"noise_sampling": "logit-normal", "sampler": "heun"}),
]


@pytest.mark.parametrize("name,overrides", OPTIONS_THE_SUITES_USE)
def test_model_contract_with_options(name, overrides):
    """Config options that change a network, its loss or its sampler keep the contract."""
    base = MODELS.get(name)
    check_contract(type(base.__name__, (base,), {"tiny_overrides": {**base.tiny_overrides, **overrides}}))


PLUGIN_SOURCE = textwrap.dedent('''
    from dataclasses import dataclass
    import torch
    from gmbench.models.base import GenerativeModel
    from gmbench.registry import register_model

    @dataclass(frozen=True)
    class MeanPlusNoiseConfig:
        scale: float = 0.1

    class MeanPlusNoise(GenerativeModel):
        """A third-party toy: a learned mean image plus Gaussian noise."""
        family = "toy"
        Config = MeanPlusNoiseConfig

        def __init__(self, config=None, image_shape=(1, 28, 28)):
            super().__init__(config, image_shape)
            self.mean = torch.nn.Parameter(torch.randn(*image_shape) * 0.01)
            self.opt = torch.optim.SGD([self.mean], lr=0.5)

        def train_step(self, x):
            loss = (x - self.mean).pow(2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            return {"loss": loss.detach()}

        @torch.no_grad()
        def sample(self, n, generator=None):
            noise = self.randn(n, *self.image_shape, generator=generator)
            return (self.mean + self.config.scale * noise).clamp(-1, 1)

    def register():
        register_model("toy-plugin-model", MeanPlusNoise)
''')


def test_third_party_model_through_entry_point(install_plugin):
    install_plugin("gmbench_toy_plugin", PLUGIN_SOURCE, {"toy": "gmbench_toy_plugin:register"})
    MODELS.names()  # built-ins first, so load_plugins below only adds the plugin
    MODELS.unregister("toy-plugin-model")
    try:
        failures = registry.load_plugins()
        assert not [f for f in failures if f.name == "toy"], failures
        assert "toy-plugin-model" in MODELS.names()
        check_contract(MODELS.get("toy-plugin-model"))
    finally:
        MODELS.unregister("toy-plugin-model")


@pytest.mark.parametrize("name", [n for n in MODELS.names() if MODELS.get(n).image_size is not None])
def test_models_built_for_one_size_refuse_others(name):
    cls = MODELS.get(name)
    with pytest.raises(ValueError, match="is built for 28x28 images, got 32x32"):
        cls(cls.tiny_config(), image_shape=(1, 32, 32))
