"""Shared fixtures of the pytest-benchmark micro-benchmarks (run: pytest benchmarks/ --benchmark-autosave).

Every timed function ends with ``gmbench.bench.timing.sync(device)``, so on a GPU a round measures
finished work, not queued kernels. The device is CUDA when available; set GMBENCH_BENCH_DEVICE
to choose.
"""
from __future__ import annotations

import os

import pytest
import torch
from bench_helpers import BATCH


@pytest.fixture(scope="session")
def device() -> torch.device:
    name = os.environ.get("GMBENCH_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@pytest.fixture
def images(device) -> torch.Tensor:
    """A fixed batch of float images in [-1, 1], [BATCH,1,28,28], on the device."""
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(BATCH, 1, 28, 28, generator=generator) * 2 - 1).to(device)
