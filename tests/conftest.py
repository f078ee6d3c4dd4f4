"""Test-session settings and shared fixtures.

The real MNIST is used when GMBENCH_DATA_ROOT (or ../shared/datasets beside the checkout) has it.
Tiny tensors gain nothing from intra-op threads, and on a shared 2-core machine OpenMP threads
that wait on each other made the model tests 10-50x slower (measured: a tiny U-Net step took
0.4-2.3 s with 2 threads under load, 0.05 s with 1). So the tests run single-threaded.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SHARED_INCEPTION = SHARED_DATA.parent / "weights" / "fid-inception-2015-12-05.torchscript.pt"

if not os.environ.get("GMBENCH_DATA_ROOT") and (SHARED_DATA / "MNIST" / "raw").is_dir():
    os.environ["GMBENCH_DATA_ROOT"] = str(SHARED_DATA)

torch.set_num_threads(1)


def _has_mnist() -> bool:
    from gmbench.data import data_root

    raw = data_root() / "MNIST" / "raw"
    return any(raw.glob("t10k-images-idx3-ubyte*"))


requires_mnist = pytest.mark.skipif(not _has_mnist(), reason="MNIST IDX files not found (set GMBENCH_DATA_ROOT)")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Each test session gets its own stats cache, so tests never touch ~/.cache (session-scoped, so that it is
    in place before module-scoped fixtures run their suites)."""
    saved = os.environ.get("GMBENCH_CACHE")
    os.environ["GMBENCH_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    yield
    if saved is None:
        os.environ.pop("GMBENCH_CACHE", None)
    else:
        os.environ["GMBENCH_CACHE"] = saved


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a fake third-party distribution: ``install(module, source, {entry_name: "module:func"})``.

    It writes the module and a ``*.dist-info`` with ``gmbench.plugins`` entry points on sys.path,
    as pip would; the module is forgotten afterwards.
    """
    import sys

    installed = []

    def install(module: str, source: str, entries: dict[str, str]) -> None:
        (tmp_path / f"{module}.py").write_text(source)
        dist = tmp_path / f"{module}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
        (dist / "entry_points.txt").write_text(f"[gmbench.plugins]\n{lines}")
        monkeypatch.syspath_prepend(str(tmp_path))
        installed.append(module)

    yield install
    for module in installed:
        sys.modules.pop(module, None)


def inception_weights_path() -> Path:
    """The Inception weights the tests use: $GMBENCH_INCEPTION_WEIGHTS, else ../shared's (may not exist)."""
    return Path(os.environ.get("GMBENCH_INCEPTION_WEIGHTS") or SHARED_INCEPTION)
