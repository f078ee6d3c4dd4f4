"""bf16 autocast (the ``bf16`` config field of every trained built-in model): mixed precision that
trains and samples close to fp32, with fp32 weights, losses and samples."""
import dataclasses

import pytest
import torch

from gmbench.device import fast_bf16
from gmbench.models.gan import FloatLinear
from gmbench.registry import MODELS, ensure_loaded

ensure_loaded()
BF16_MODELS = ["gan-mlp", "dcgan", "wgan-gp", "vae", "vae-2stage", "ddpm", "flow-matching"]


def _images(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # [n,1,28,28]


def _run(name: str, bf16: bool, steps: int = 4) -> tuple[torch.nn.Module, list[dict], torch.Tensor]:
    """A tiny model trained ``steps`` steps from seed 0, its losses and 8 samples."""
    cls = MODELS.get(name)
    config = dataclasses.replace(cls.tiny_config(), bf16=bf16)
    torch.manual_seed(0)
    model = cls(config)
    torch.manual_seed(1)
    losses = [model.train_step(_images(seed=i)) for i in range(steps)]
    return model, losses, model.sample(8, generator=torch.Generator().manual_seed(2))


def test_every_trained_builtin_has_the_option():
    trained = sorted(n for n in MODELS.names() if MODELS.get(n).trainable and MODELS.get(n).__module__.startswith("gmbench."))
    assert sorted(BF16_MODELS) == trained
    assert all("bf16" in MODELS.get(n).config_fields() for n in trained)


@pytest.mark.parametrize("name", BF16_MODELS)
def test_bf16_trains_and_samples_close_to_fp32(name):
    """Same seeds: losses within bf16 rounding of fp32's (a few per cent), yet not equal (autocast ran),
    fp32 weights and fp32 samples in [-1, 1]."""
    _, losses32, samples32 = _run(name, bf16=False)
    model, losses16, samples16 = _run(name, bf16=True)
    first = losses16[0]
    for key, value in first.items():
        assert value.dtype == torch.float32 and value.isfinite(), key
        torch.testing.assert_close(value, losses32[0][key], rtol=0.05, atol=0.02, msg=f"{name} {key}")
    assert any(not torch.equal(a[k], b[k]) for a, b in zip(losses16, losses32) for k in a), "bf16 changed nothing"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert samples16.dtype == torch.float32 and samples16.shape == samples32.shape
    assert samples16.abs().max() <= 1 and samples16.isfinite().all()


def test_float_linear_runs_in_fp32_under_autocast():
    torch.manual_seed(0)
    layer, x = FloatLinear(32, 1), torch.randn(8, 32).bfloat16()  # x as a bf16 layer below would pass it
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)  # [8,1]
        plain = torch.nn.functional.linear(x, layer.weight, layer.bias)  # [8,1]
    assert out.dtype == torch.float32 and plain.dtype == torch.bfloat16
    torch.testing.assert_close(out, x.float() @ layer.weight.T + layer.bias)


def test_fast_bf16_follows_the_cpu_flags(monkeypatch):
    for avx512_bf16, amx, expected in [(True, False, True), (False, True, True), (False, False, False)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        assert fast_bf16(torch.device("cpu")) is expected


@pytest.mark.parametrize("native", [True, False])
def test_auto_turns_bf16_on_where_the_device_computes_in_bf16(monkeypatch, native):
    """bf16 = "auto": autocast and the records' dtype follow ``fast_bf16``; true and false ignore it."""
    import gmbench.device
    from gmbench.bench.runner import model_dtype
    monkeypatch.setattr(gmbench.device, "fast_bf16", lambda device: native)
    cls, cpu = MODELS.get("gan-mlp"), torch.device("cpu")
    for setting, expected in [("auto", native), (True, True), (False, False)]:
        config = cls.Config(bf16=setting)
        with cls(config).autocast():
            assert torch.is_autocast_enabled("cpu") is expected
        assert model_dtype(config, cpu) == ("bf16" if expected else "fp32")


def test_bf16_setting_from_a_suite_or_the_command_line():
    from gmbench.config import apply_overrides
    from gmbench.errors import GmbenchError
    cls = MODELS.get("dcgan")
    assert apply_overrides(cls.Config(), {"bf16": "auto"}).bf16 == "auto"
    assert apply_overrides(cls.Config(), {"bf16": "true"}).bf16 is True
    with pytest.raises(GmbenchError, match="bf16='sometimes' must be true or false or 'auto'"):
        apply_overrides(cls.Config(), {"bf16": "sometimes"})
