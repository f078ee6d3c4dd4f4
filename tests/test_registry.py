import textwrap

import pytest

from gmbench import registry
from gmbench.errors import GmbenchError
from gmbench.models.gan import DCGAN
from gmbench.registry import MODELS, Registry


def make_registry():
    return Registry("thing", lambda obj: isinstance(obj, int), "an int")


@pytest.mark.parametrize("bad", ["", "with space", "a/b", "a\\b", None, 3])
def test_register_rejects_bad_names(bad):
    with pytest.raises(GmbenchError, match="name must be"):
        make_registry().register(bad, 1)


def test_register_rejects_taken_name_and_wrong_kind():
    reg = make_registry()
    reg.register("one", 1)
    with pytest.raises(GmbenchError, match="already taken"):
        reg.register("one", 2)
    with pytest.raises(GmbenchError, match="expected an int"):
        reg.register("two", "2")


def test_unknown_name_lists_known_and_suggests_closest():
    with pytest.raises(GmbenchError) as err:
        MODELS.get("dcgann")
    assert "Did you mean 'dcgan'?" in str(err.value)
    assert "dcgan" in str(err.value).split("Known models:")[1]


def test_builtins_registered_with_family():
    assert MODELS.get("dcgan") is DCGAN and DCGAN.family == "gan"
    assert {"mnist", "fashion-mnist"} <= set(registry.DATASETS.names())


PLUGIN = '''
from dataclasses import dataclass
import torch
from gmbench.models.base import GenerativeModel
from gmbench.registry import register_model

@dataclass(frozen=True)
class NoiseConfig:
    scale: float = 0.5

class NoiseModel(GenerativeModel):
    family = "other"
    Config = NoiseConfig
    def __init__(self, config=None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        self.w = torch.nn.Parameter(torch.zeros(()))
    def train_step(self, x):
        return {"loss": self.w.detach()}
    @torch.no_grad()
    def sample(self, n, generator=None):
        return (self.randn(n, *self.image_shape, generator=generator) * self.config.scale).clamp(-1, 1)

def register():
    register_model("test-noise", NoiseModel)

def broken():
    raise RuntimeError("plugin exploded")
'''


@pytest.fixture
def installed_plugin(install_plugin):
    """A third-party distribution with two gmbench.plugins entry points, one of them broken."""
    install_plugin("noise_plugin", textwrap.dedent(PLUGIN),
                   {"noise": "noise_plugin:register", "broken": "noise_plugin:broken"})
    yield
    MODELS.unregister("test-noise")


def test_entry_point_plugin_registers_and_broken_plugin_is_reported(installed_plugin):
    with pytest.warns(UserWarning, match="'broken'.*plugin exploded"):
        failures = registry.load_plugins()
    assert [f.name for f in failures] == ["broken"]
    assert "RuntimeError: plugin exploded" in failures[0].error
    assert MODELS.get("test-noise").family == "other"


def test_list_json_shows_plugin_model(installed_plugin, capsys):
    import json

    from gmbench.cli import main

    with pytest.warns(UserWarning):
        registry.load_plugins()
    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {"name": "test-noise", "family": "other", "source": "noise_plugin"} in listing["models"]  # its distribution
    assert {"name": "dcgan", "family": "gan", "source": "built-in"} in listing["models"]
    assert {"name": "mnist", "source": "built-in", "image_shape": [1, 28, 28], "num_classes": 10} in listing["datasets"]
    assert {"name": "mnist-lenet", "source": "built-in"} in listing["extractors"]


def test_a_thing_registered_by_code_outside_gmbench_names_its_package():
    """Outside an entry point (a notebook, a test), the source is the registering code's top-level package."""
    from gmbench.models.gan import GANMLP

    registry.register_model("directly-registered", type("Direct", (GANMLP,), {}))
    try:
        assert MODELS.source("directly-registered") == "tests" and MODELS.source("dcgan") == registry.BUILTIN
    finally:
        MODELS.unregister("directly-registered")


@pytest.fixture
def isolated_plugin_loading(monkeypatch):
    """The next registry look-up loads the plugins again, reporting into a fresh failure list."""
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "PLUGIN_FAILURES", [])


@pytest.mark.parametrize("source", ["import sys\nsys.exit('plugin gave up')\n",
                                    "import sys\ndef register():\n    sys.exit('plugin gave up')\n"])
def test_plugin_calling_sys_exit_is_a_plugin_failure(install_plugin, isolated_plugin_loading, capsys, source):
    from gmbench.cli import main

    install_plugin("exiting_plugin", source, {"exiting": "exiting_plugin:register"})
    with pytest.warns(UserWarning, match="'exiting'.*SystemExit: plugin gave up"):
        assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert "dcgan" in out and "plugin 'exiting' failed to load: SystemExit: plugin gave up" in err


def test_plugin_registering_a_model_without_dataclass_config_is_a_plugin_failure(install_plugin, isolated_plugin_loading):
    install_plugin("plain_plugin", textwrap.dedent(PLUGIN) + textwrap.dedent('''
        class PlainModel(NoiseModel):
            class Config:
                scale = 0.5

        def register_plain():
            register_model("test-plain", PlainModel)
        '''), {"plain": "plain_plugin:register_plain"})
    with pytest.warns(UserWarning, match="'plain'.*Cannot register model 'test-plain'"):
        assert "test-plain" not in MODELS
    assert [f.name for f in registry.PLUGIN_FAILURES] == ["plain"]
    assert "whose Config is a dataclass" in registry.PLUGIN_FAILURES[0].error
