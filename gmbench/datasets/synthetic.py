"""synthetic-rgb32: a deterministic RGB 32x32 set of coloured discs and squares, made in memory (no files).

Class k (0..9) is a shape (disc for even k, square for odd k) in colour ``PALETTE[k // 2]`` (five
colours) at a random place and size on a dark noisy background; drawn from a fixed seed per split,
so every machine gets the same images. Small (256 train, 32 test): for smoke tests of RGB 32x32
paths, not for benchmarks.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from gmbench.dataset_spec import Dataset

PALETTE = torch.tensor([[230, 60, 50], [60, 200, 80], [60, 90, 230], [240, 210, 60], [200, 80, 220]], dtype=torch.float32)
COUNTS = (("train", 256), ("test", 32))
SEEDS = {"train": 0, "test": 1}


def shapes_rgb32(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """n images uint8 [n,3,32,32] and their classes int64 [n], drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)  # [n]
    centre = torch.randint(8, 24, (n, 2, 1, 1), generator=g).float()  # [n,2,1,1] (y, x)
    radius = torch.randint(4, 9, (n, 1, 1), generator=g).float()  # [n,1,1]
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")  # [32,32] each
    dy, dx = ys - centre[:, 0], xs - centre[:, 1]  # [n,32,32] each
    disc = dy.pow(2) + dx.pow(2) <= radius.pow(2)  # [n,32,32]
    square = torch.maximum(dy.abs(), dx.abs()) <= radius  # [n,32,32]
    mask = torch.where((labels % 2 == 0)[:, None, None], disc, square)[:, None]  # [n,1,32,32]
    background = 20 + 15 * torch.rand(n, 3, 32, 32, generator=g)  # [n,3,32,32]
    colour = PALETTE[labels // 2][:, :, None, None]  # [n,3,1,1]
    images = torch.where(mask, colour, background)  # [n,3,32,32]
    return images.round().to(torch.uint8), labels


class SyntheticRGB32(Dataset):
    """Coloured shapes, 10 classes, RGB 32x32 (see the module docstring)."""

    image_shape = (3, 32, 32)
    num_classes = 10

    def count(self, split: str) -> int | None:
        return dict(COUNTS).get(split)

    def load(self, split: str, root: Path) -> tuple[Tensor, Tensor]:
        return shapes_rgb32(dict(COUNTS)[split], SEEDS[split])
