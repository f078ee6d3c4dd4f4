"""What a registered dataset is: where its IDX files live and what they must contain.

Its own module, below both ``registry`` (which checks what is registered as a dataset) and ``data``
(which reads the files), so that the two import it rather than each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's IDX files live and what they must contain."""

    folder: str  # sub-folder of the root, as torchvision names it ("MNIST", "FashionMNIST")
    torchvision_class: str  # used only to download missing files when GMBENCH_DOWNLOAD=1
    counts: tuple[tuple[str, int], ...]  # (split, number of images)
    image_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10

    def count(self, split: str) -> int:
        return dict(self.counts)[split]

    def files(self, root: Path, split: str) -> tuple[Path, Path]:
        prefix = _SPLIT_PREFIX[split]
        raw = root / self.folder / "raw"
        return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
