"""Shared fixtures: the real MNIST when GMBENCH_DATA_ROOT (or ../shared/datasets) has it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

if not os.environ.get("GMBENCH_DATA_ROOT") and (SHARED_DATA / "MNIST" / "raw").is_dir():
    os.environ["GMBENCH_DATA_ROOT"] = str(SHARED_DATA)

torch.set_num_threads(min(2, torch.get_num_threads()))


def _has_mnist() -> bool:
    from gmbench.data import data_root

    raw = data_root() / "MNIST" / "raw"
    return any(raw.glob("t10k-images-idx3-ubyte*"))


requires_mnist = pytest.mark.skipif(not _has_mnist(), reason="MNIST IDX files not found (set GMBENCH_DATA_ROOT)")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own stats cache, so tests never touch ~/.cache."""
    monkeypatch.setenv("GMBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
