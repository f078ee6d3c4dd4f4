from dataclasses import dataclass

import pytest

from gmbench.config import apply_overrides, parse_set_options
from gmbench.errors import GmbenchError


@dataclass(frozen=True)
class Cfg:
    lr: float = 1e-3
    steps: int = 10
    bf16: bool = False
    sampler: str = "ddim"
    widths: tuple[int, ...] = (32, 64)
    limit: int | None = None


def test_string_values_are_parsed_to_field_types():
    cfg = apply_overrides(Cfg(), {"lr": "2e-4", "steps": "7", "bf16": "true", "widths": "8,16,32", "limit": "none"})
    assert cfg == Cfg(lr=2e-4, steps=7, bf16=True, widths=(8, 16, 32), limit=None)


def test_typed_values_and_int_for_float():
    assert apply_overrides(Cfg(), {"lr": 1, "widths": [4], "limit": 3}) == Cfg(lr=1.0, widths=(4,), limit=3)


@pytest.mark.parametrize("overrides, message", [
    ({"lrr": 1e-4}, "unknown key 'lrr'. Valid keys: bf16, limit, lr, sampler, steps, widths"),
    ({"steps": "ten"}, "steps='ten' has the wrong type; expected int"),
    ({"steps": 1.5}, "expected int"),
    ({"bf16": "maybe"}, "expected bool"),
    ({"lr": True}, "expected float"),
])
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(GmbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(Cfg(), overrides, where="model x")


def test_allowed_keys_restrict_changes():
    with pytest.raises(GmbenchError, match="unknown key 'lr'. Valid keys: sampler"):
        apply_overrides(Cfg(), {"lr": 1.0}, allowed={"sampler"})


def test_parse_set_options():
    assert parse_set_options(["model.lr=1e-4", "dcgan.width=8", "budget.steps=5"]) == {
        "model": {"lr": "1e-4"}, "dcgan": {"width": "8"}, "budget": {"steps": "5"}}
    with pytest.raises(GmbenchError, match="SCOPE.KEY=VALUE"):
        parse_set_options(["lr=1e-4"])


def test_builtin_model_defaults_and_tiny_configs_are_in_range():
    from gmbench.registry import MODELS

    for name in MODELS.names():
        cls = MODELS.get(name)
        apply_overrides(cls.Config(), cls.tiny_overrides)


@pytest.mark.parametrize("model, overrides, message", [
    ("dcgan", {"width": "-3"}, "width must be a finite number >= 1, got -3"),
    ("dcgan", {"width": "0"}, "width must be"),
    ("dcgan", {"lr": "-1"}, "lr must be a finite number > 0, got -1.0"),
    ("dcgan", {"beta1": "1"}, "beta1 must be a finite number in [0, 1)"),
    ("gan-mlp", {"hidden_g": "16,0"}, "hidden_g must be a non-empty list of finite numbers >= 1"),
    ("gan-mlp", {"z_dim": "0"}, "z_dim must be"),
    ("wgan-gp", {"gp_weight": "-1"}, "gp_weight must be a finite number >= 0"),
    ("wgan-gp", {"beta2": "nan"}, "beta2 must be"),
    ("vae", {"latent_dim": "0"}, "latent_dim must be"),
    ("vae-2stage", {"stage2_lr": "0"}, "stage2_lr must be"),
    ("vae-2stage", {"stage1_steps": "-1"}, "stage1_steps must be a finite number >= 0"),
    ("ddpm", {"channels": ""}, "channels must be a non-empty list"),
    ("ddpm", {"beta_end": "1"}, "beta_end must be a finite number in (0, 1)"),
    ("ddpm", {"beta_start": "0.1"}, "beta_start must be <= beta_end"),
    ("ddpm", {"ema_decay": "1.5"}, "ema_decay must be"),
    ("ddpm", {"lr": "inf"}, "lr must be"),
    ("flow-matching", {"time_scale": "0"}, "time_scale must be"),
    ("flow-matching", {"patch_size": "0"}, "patch_size must be"),
    ("flow-matching", {"sample_steps": "0"}, "sample_steps must be"),
    ("real-data", {"n_images": "0"}, "n_images must be"),
    ("pca-gaussian", {"n_components": "0"}, "n_components must be"),
])
def test_builtin_model_configs_refuse_values_that_cannot_work(model, overrides, message):
    from gmbench.registry import MODELS

    with pytest.raises(GmbenchError) as err:
        apply_overrides(MODELS.get(model).Config(), overrides, where=f"[models.{model}]")
    assert f"[models.{model}]: {message}" in str(err.value)
