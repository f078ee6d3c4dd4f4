"""The one contract every registered model passes unchanged (DESIGN.md, "Contracts"), as
``gmbench.testing.check_model`` checks it: the same call a plugin author makes from their tests.

Each model is built from ``cls.tiny_config()`` (its defaults with its declared ``tiny_overrides``),
so this file never needs a per-model entry: a new model is done when it passes as it stands.
A third-party model registered through a ``gmbench.plugins`` entry point runs the same checks.
"""
from __future__ import annotations

import textwrap

import pytest

from gmbench import registry
from gmbench.registry import MODELS
from gmbench.testing import check_model

@pytest.mark.parametrize("name", MODELS.names())
def test_model_contract(name):
    check_model(MODELS.get(name))


OPTIONS_THE_SUITES_USE = [
    ("gan-mlp", {"batch_norm_g": True}),
    ("ddpm", {"noise_sampling": "logit-normal", "channels": (8, 8, 8), "sampler": "ddpm"}),
    ("flow-matching", {"noise_sampling": "logit-normal", "sampler": "heun"}),
]


@pytest.mark.parametrize("name,overrides", OPTIONS_THE_SUITES_USE)
def test_model_contract_with_options(name, overrides):
    """Config options that change a network, its loss or its sampler keep the contract."""
    base = MODELS.get(name)
    check_model(type(base.__name__, (base,), {"tiny_overrides": {**base.tiny_overrides, **overrides}}))


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
        check_model(MODELS.get("toy-plugin-model"))
    finally:
        MODELS.unregister("toy-plugin-model")


@pytest.mark.parametrize("name", [n for n in MODELS.names() if MODELS.get(n).image_sizes is not None])
def test_models_built_for_some_sizes_refuse_others(name):
    cls = MODELS.get(name)
    with pytest.raises(ValueError, match="is built for 28x28 or 32x32 images, got 64x64"):
        cls(cls.tiny_config(), image_shape=(1, 64, 64))
