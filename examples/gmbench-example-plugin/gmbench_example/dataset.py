"""``bars28``: grayscale 28x28 images of one bright bar, made in memory (no files to fetch).

Four classes by the bar's direction (horizontal, vertical, and the two diagonals), at a random offset
and width; each split is drawn from its own fixed seed, so every machine gets the same images.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from gmbench.dataset_spec import Dataset

COUNTS = {"train": 1024, "test": 256}
SEEDS = {"train": 0, "test": 1}
DIRECTIONS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7071, 0.7071], [0.7071, -0.7071]])  # [4,2] bar normals (y, x)


def bars(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """n images uint8 [n,1,28,28] and their classes int64 [n], drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(DIRECTIONS), (n,), generator=g)  # [n]
    offset = torch.rand(n, 1, 1, generator=g) * 12 - 6  # [n,1,1] distance of the bar from the centre
    half_width = 1 + torch.rand(n, 1, 1, generator=g) * 2  # [n,1,1]
    ys, xs = torch.meshgrid(torch.arange(28.0) - 13.5, torch.arange(28.0) - 13.5, indexing="ij")  # [28,28] each
    normal = DIRECTIONS[labels]  # [n,2]
    distance = ys * normal[:, 0, None, None] + xs * normal[:, 1, None, None] - offset  # [n,28,28]
    images = 255 * (distance.abs() <= half_width)  # [n,28,28]
    return images.to(torch.uint8).unsqueeze(1), labels


class Bars28(Dataset):
    image_shape = (1, 28, 28)
    num_classes = len(DIRECTIONS)

    def count(self, split: str) -> int | None:
        return COUNTS.get(split)  # known without loading: suites check batch sizes against it at load

    def load(self, split: str, root: Path) -> tuple[Tensor, Tensor]:
        return bars(COUNTS[split], SEEDS[split])  # made in memory: the data root is not read
