"""FLOPs per image, the measured peak and MFU: known answers and untouched training."""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from gmbench.bench import flops
from gmbench.bench.timing import Summary
from gmbench.models.base import GenerativeModel
from gmbench.models.diffusion import DDPM, FlowMatching

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
