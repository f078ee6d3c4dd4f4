"""IDX files in torchvision's layout: ``<root>/MNIST/raw/train-images-idx3-ubyte[.gz]`` and so on (MNIST, Fashion-MNIST).

Missing files are an error that creates nothing; torchvision downloads them only when
``GMBENCH_DOWNLOAD=1`` asks for it, and gmbench says so on stderr.
"""
from __future__ import annotations

import gzip
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gmbench.data import ENV_DATA_ROOT
from gmbench.dataset_spec import Dataset
from gmbench.errors import GmbenchError

ENV_DOWNLOAD = "GMBENCH_DOWNLOAD"
_IDX_DTYPE_UBYTE = 0x08
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


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


@dataclass(frozen=True)
class IdxDataset(Dataset):
    """A grayscale dataset of IDX files in torchvision's layout."""

    name: str  # registered name, for messages
    folder: str  # sub-folder of the root, as torchvision names it ("MNIST", "FashionMNIST")
    torchvision_class: str  # used only to download missing files when GMBENCH_DOWNLOAD=1
    counts: tuple[tuple[str, int], ...]  # (split, number of images)
    image_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(dict(self.counts))

    def count(self, split: str) -> int | None:
        return dict(self.counts).get(split)

    def files(self, root: Path, split: str) -> tuple[Path, Path]:
        prefix = _SPLIT_PREFIX[split]
        raw = root / self.folder / "raw"
        return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"

    def load(self, split: str, root: Path) -> tuple[Tensor, Tensor]:
        image_path, label_path = self.files(root, split)
        if _existing(image_path) is None or _existing(label_path) is None:
            if os.environ.get(ENV_DOWNLOAD) != "1":
                raise GmbenchError(
                    f"Dataset {self.name!r} ({split}) is not under {root}: gmbench looked for {image_path.relative_to(root)}[.gz] "
                    f"and {label_path.relative_to(root)}[.gz] (torchvision's layout). Set {ENV_DATA_ROOT} (or --data-root) "
                    f"to the folder that holds them, or set {ENV_DOWNLOAD}=1 to let torchvision download them into {root}."
                )
            self._download(root)
        images = read_idx(_existing(image_path), 3, self.count(split), self.image_shape[1:])
        labels = read_idx(_existing(label_path), 1, self.count(split))
        if labels.max() >= self.num_classes:
            raise GmbenchError(f"{_existing(label_path)} holds label {labels.max()}; expected < {self.num_classes}.")
        images_t = torch.from_numpy(images.copy()).unsqueeze(1)  # [N,1,28,28] uint8
        return images_t, torch.from_numpy(labels.astype(np.int64))  # [N] int64

    def _download(self, root: Path) -> None:
        """Fetch both splits through torchvision, saying so on stderr; GmbenchError when that fails."""
        import torchvision.datasets as tvd

        print(f"gmbench: downloading dataset {self.name!r} into {root / self.folder} with torchvision ({ENV_DOWNLOAD}=1)",
              file=sys.stderr, flush=True)
        try:
            for train in (True, False):
                getattr(tvd, self.torchvision_class)(str(root), train=train, download=True)
        except Exception as exc:
            raise GmbenchError(f"Downloading dataset {self.name!r} into {root} failed ({type(exc).__name__}: {exc}). Check the "
                               f"network, or put the IDX files there yourself and unset {ENV_DOWNLOAD}.") from None
