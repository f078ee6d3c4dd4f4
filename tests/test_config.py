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
