"""``pooled-pixels``: features are the image average-pooled to 7x7 per channel, in [-1,1]; no weights, no head.

A weight-free extractor works on any dataset and image size, so quick checks of new data need no
classifier; its scores measure pixel statistics, not perceptual quality.
"""
from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import Tensor

from gmbench.metrics.features import FeatureExtractor

GRID = 7


class PooledPixels(FeatureExtractor):
    name = "pooled-pixels"
    feature_dim = 0  # set per instance: channels * GRID * GRID
    preprocessing_version = "1"

    def __init__(self, channels: int):
        # No weights: the hash names what defines the features instead, so the stats cache keys stay stable.
        super().__init__(hashlib.sha256(f"pooled-pixels grid={GRID} channels={channels}".encode()).hexdigest(), None)
        self.channels = channels
        self.feature_dim = channels * GRID * GRID

    def forward(self, images: Tensor) -> tuple[Tensor, None]:
        if images.shape[1] != self.channels:
            raise ValueError(f"pooled-pixels was built for {self.channels}-channel images, got {images.shape[1]}")
        x = images.float() / 127.5 - 1  # [N,C,H,W] in [-1,1]
        return F.adaptive_avg_pool2d(x, GRID).flatten(1), None  # [N,C*49]


def build_pooled_pixels(device: str | torch.device = "cpu", channels: int = 1) -> PooledPixels:
    """The registered factory; ``channels`` is an option a suite passes in ``[metrics.options.pooled-pixels]``."""
    return PooledPixels(channels)  # no weights to move: it computes on the device of the images
