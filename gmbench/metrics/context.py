"""``MetricContext``: what a metric function may read besides the two image sets' FeatureStats."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gmbench.data import load_dataset
from gmbench.errors import GmbenchError


@dataclass(frozen=True)
class MetricContext:
    """The evaluation's seed, the generated uint8 images [N,C,H,W], the reference dataset (None when the
    reference is a set of images), where datasets are read from, and the extractor's device."""

    seed: int
    samples: Tensor
    dataset: str | None = None
    data_root: str | None = None
    device: torch.device = torch.device("cpu")

    def test_split(self) -> tuple[Tensor, Tensor]:
        """The reference dataset's test images uint8 [M,C,H,W] and labels int64 [M]."""
        if self.dataset is None:
            raise GmbenchError("This metric needs a dataset reference (e.g. mnist:test), not a set of images.")
        return load_dataset(self.dataset, "test", self.data_root)
