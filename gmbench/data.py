"""Datasets as resident uint8 tensors read from IDX files; training batches drawn on the device.

Files follow torchvision's layout: ``<root>/MNIST/raw/train-images-idx3-ubyte[.gz]`` and so on.
Root: explicit argument (``--data-root``) > ``GMBENCH_DATA_ROOT`` > ``~/.cache/gmbench/datasets``.
Missing files are an error that creates nothing; torchvision downloads them only when
``GMBENCH_DOWNLOAD=1`` asks for it, and gmbench says so on stderr.
"""
from __future__ import annotations

import gzip
import os
import sys
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gmbench.dataset_spec import DatasetSpec
from gmbench.errors import GmbenchError
from gmbench.registry import DATASETS

ENV_DATA_ROOT = "GMBENCH_DATA_ROOT"
ENV_DOWNLOAD = "GMBENCH_DOWNLOAD"
_IDX_DTYPE_UBYTE = 0x08


DATASETS.register("mnist", DatasetSpec("MNIST", "MNIST", (("train", 60000), ("test", 10000))))
DATASETS.register("fashion-mnist", DatasetSpec("FashionMNIST", "FashionMNIST", (("train", 60000), ("test", 10000))))


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_DATA_ROOT):
        return Path(os.environ[ENV_DATA_ROOT]).expanduser()
    return Path.home() / ".cache" / "gmbench" / "datasets"


def _existing(path: Path) -> Path | None:
    for candidate in (path.with_name(path.name + ".gz"), path):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, expected_ndim: int, expected_count: int | None = None,
             expected_item_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read an (optionally gzipped) IDX file of unsigned bytes, checking header, sizes and length."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise GmbenchError(f"Cannot read IDX file {path}: {exc}. The file is corrupted or truncated; delete it and download it again.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise GmbenchError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'}).")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != _IDX_DTYPE_UBYTE or ndim != expected_ndim:
        raise GmbenchError(
            f"{path}: IDX header says type 0x{dtype_code:02x} with {ndim} dimensions; expected unsigned bytes "
            f"(0x08) with {expected_ndim}. Is it the right file?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GmbenchError(f"{path} is truncated: its IDX header is incomplete.")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if expected_count is not None and dims[0] != expected_count:
        raise GmbenchError(f"{path} holds {dims[0]} items; expected {expected_count}.")
    if expected_item_shape is not None and dims[1:] != expected_item_shape:
        raise GmbenchError(f"{path} holds items of shape {dims[1:]}; expected {expected_item_shape}.")
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise GmbenchError(
            f"{path} is truncated or padded: {len(raw) - header} data bytes where the header promises {size}. "
            "Delete it and download it again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _download(name: str, spec: DatasetSpec, root: Path) -> None:
    """Fetch both splits through torchvision, saying so on stderr; GmbenchError when that fails."""
    import torchvision.datasets as tvd

    print(f"gmbench: downloading dataset {name!r} into {root / spec.folder} with torchvision ({ENV_DOWNLOAD}=1)",
          file=sys.stderr, flush=True)
    try:
        for train in (True, False):
            getattr(tvd, spec.torchvision_class)(str(root), train=train, download=True)
    except Exception as exc:
        raise GmbenchError(f"Downloading dataset {name!r} into {root} failed ({type(exc).__name__}: {exc}). Check the "
                           f"network, or put the IDX files there yourself and unset {ENV_DOWNLOAD}.") from None


@lru_cache(maxsize=8)
def _load(name: str, split: str, root: Path) -> tuple[Tensor, Tensor]:
    spec: DatasetSpec = DATASETS.get(name)
    if split not in dict(spec.counts):
        raise GmbenchError(f"Dataset {name!r} has no split {split!r}; splits: {', '.join(dict(spec.counts))}.")
    image_path, label_path = spec.files(root, split)
    if _existing(image_path) is None or _existing(label_path) is None:
        if os.environ.get(ENV_DOWNLOAD) != "1":
            raise GmbenchError(
                f"Dataset {name!r} ({split}) is not under {root}: gmbench looked for {image_path.relative_to(root)}[.gz] "
                f"and {label_path.relative_to(root)}[.gz] (torchvision's layout). Set {ENV_DATA_ROOT} (or --data-root) "
                f"to the folder that holds them, or set {ENV_DOWNLOAD}=1 to let torchvision download them into {root}."
            )
        _download(name, spec, root)
    images = read_idx(_existing(image_path), 3, spec.count(split), spec.image_shape[1:])
    labels = read_idx(_existing(label_path), 1, spec.count(split))
    if labels.max() >= spec.num_classes:
        raise GmbenchError(f"{_existing(label_path)} holds label {labels.max()}; expected < {spec.num_classes}.")
    images_t = torch.from_numpy(images.copy()).unsqueeze(1)  # [N,1,28,28] uint8
    return images_t, torch.from_numpy(labels.astype(np.int64))


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None) -> tuple[Tensor, Tensor]:
    """Images uint8 [N,C,H,W] and labels int64 [N] of one split (cached per process; do not modify)."""
    return _load(name, split, data_root(root).resolve())


def to_float(images: Tensor) -> Tensor:
    """uint8 [0,255] -> float [-1,1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(x: Tensor) -> Tensor:
    """float [-1,1] -> uint8 via round((x+1)*127.5), clamped (the harness's one conversion)."""
    return ((x.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


class DeviceBatches:
    """Random batches (epoch-wise permutations) drawn on ``device`` from a resident uint8 tensor.

    The whole split lives on the device once; each batch is one gather and one conversion,
    with no DataLoader, PIL or host round trip.
    """

    def __init__(self, images: Tensor, batch_size: int, device: torch.device, seed: int = 0,
                 rows: tuple[int, int] = (0, 1)):
        """``rows``: (rank, world) of data-parallel training; each batch is then this rank's batch_size/world
        rows of the global batch, which every rank draws alike from ``seed``."""
        if batch_size < 1 or batch_size > len(images):
            raise GmbenchError(f"Batch size {batch_size} must be between 1 and the {len(images)} images of the split.")
        if batch_size % rows[1]:
            raise GmbenchError(f"Batch size {batch_size} does not split evenly over {rows[1]} data-parallel ranks; "
                               f"make it a multiple of {rows[1]}.")
        self.rows = rows
        self.images = images.to(device)  # [N,C,H,W] uint8, resident
        self.batch_size = batch_size
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self._order = self._permutation()
        self._pos = 0

    def _permutation(self) -> Tensor:
        return torch.randperm(len(self.images), device=self.images.device, generator=self.generator)

    def next_indices(self) -> Tensor:
        """Indices [B] of the next batch (a new permutation starts each epoch)."""
        if self._pos + self.batch_size > len(self._order):
            self._order, self._pos = self._permutation(), 0
        idx = self._order[self._pos: self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def next(self) -> Tensor:
        """float [B/world,C,H,W] in [-1,1] on the device: this rank's rows of the next batch."""
        rank, world = self.rows
        n = self.batch_size // world
        return to_float(self.images[self.next_indices()[rank * n:(rank + 1) * n]])

    def state_dict(self) -> dict:
        """Where the sampler stands: its generator's state, the epoch's permutation and the position in it."""
        return {"generator": self.generator.get_state(), "order": self._order, "pos": self._pos}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state_dict``'s position (same images and batch size)."""
        self.generator.set_state(state["generator"])
        self._order, self._pos = state["order"].to(self.images.device), state["pos"]
