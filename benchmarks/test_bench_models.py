"""A training-step and a sampling benchmark for every registered model (models added later are covered).

Each model uses its default Config at batch 32; one untimed call warms up (allocations, cuDNN
autotuning) before the timed rounds. Sampling steps of iterative samplers are capped at
SAMPLE_STEPS_CAP so the suite stays minutes long on a CPU; the NFE used is in extra_info.
"""
from __future__ import annotations

import pytest
import torch
from bench_helpers import BATCH

from gmbench.bench.timing import sync
from gmbench.registry import MODELS

ROUNDS = 5
FIT_IMAGES = 512  # what reference models (pca-gaussian, real-data) see in fit_data
SAMPLE_STEPS_CAP = {"sample_steps": 50}


def build(name: str, device: torch.device, images: torch.Tensor):
    torch.manual_seed(0)
    cls = MODELS.get(name)
    model = cls(cls.Config()).to(device)
    model.fit_data(torch.rand(FIT_IMAGES, *images.shape[1:], generator=torch.Generator().manual_seed(1)).to(device) * 2 - 1)
    capped = {f: min(getattr(model.config, f), cap) for f, cap in SAMPLE_STEPS_CAP.items()
              if f in getattr(cls.Config, "sampling_fields", ())}
    if capped:
        model.set_sampling(**capped)
    return model


@pytest.mark.parametrize("name", MODELS.names())
def test_train_step(benchmark, name, device, images):
    model = build(name, device, images)
    if not model.trainable:
        pytest.skip(f"{name} has no training loop (fitted in fit_data)")
    model.train()

    def step():
        model.train_step(images)
        sync(device)

    benchmark.extra_info.update(model=name, batch=BATCH, device=str(device))
    benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("name", MODELS.names())
def test_sample(benchmark, name, device, images):
    model = build(name, device, images)
    generator = torch.Generator(device=device).manual_seed(0)

    def draw():
        out = model.sample(BATCH, generator=generator)
        sync(device)
        return out

    benchmark.extra_info.update(model=name, batch=BATCH, device=str(device), nfe=int(model.nfe))
    out = benchmark.pedantic(draw, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert out.shape[0] == BATCH
