"""CIFAR-10 from its python-format batches: ``<root>/cifar-10-batches-py/data_batch_1..5`` and ``test_batch``.

Each batch is a pickled dict with ``b"data"`` (uint8 [N,3072], rows of 32x32 red, then green, then
blue planes) and ``b"labels"`` (N ints in 0..9). gmbench never downloads it; the pickles are read
with an unpickler that builds only dicts, lists, numbers, strings and numpy arrays, never code.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gmbench.dataset_spec import Dataset
from gmbench.errors import GmbenchError

FOLDER = "cifar-10-batches-py"
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_ARRAY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype")}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays; any other global (code) is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N,3,32,32] and labels int64 [N] of one CIFAR-10 batch file."""
    try:
        with open(path, "rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as exc:
        raise GmbenchError(f"Cannot read the CIFAR-10 batch {path} ({type(exc).__name__}: {exc}); expected the "
                           "python-format batch of cifar-10-python.tar.gz (a pickled dict with b'data' and b'labels').") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise GmbenchError(f"{path}: b'data' is {data.shape} with {len(labels)} labels; expected [N,3072] and N labels.")
    return data.reshape(-1, 3, 32, 32), labels  # [N,3,32,32]


class Cifar10(Dataset):
    """CIFAR-10 (Krizhevsky 2009): 32x32 RGB, 10 classes, 50,000 training and 10,000 test images."""

    image_shape = (3, 32, 32)
    num_classes = 10

    def load(self, split: str, root: Path) -> tuple[Tensor, Tensor]:
        paths = [root / FOLDER / name for name in BATCHES[split]]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise GmbenchError(f"Dataset 'cifar10' ({split}) is not under {root}: gmbench looked for {FOLDER}/"
                               f"{', '.join(missing)} (the python-format batches of cifar-10-python.tar.gz, which gmbench "
                               f"never downloads). Unpack that archive there, or point --data-root / GMBENCH_DATA_ROOT at "
                               f"the folder holding {FOLDER}.")
        parts = [read_batch(p) for p in paths]
        images = torch.from_numpy(np.concatenate([x for x, _ in parts]))  # [N,3,32,32] uint8
        return images, torch.from_numpy(np.concatenate([y for _, y in parts]))  # [N] int64
