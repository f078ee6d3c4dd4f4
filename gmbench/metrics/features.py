"""Feature extractors: uint8 images [N,C,H,W] -> float features [N,D] (+ logits [N,K] with a head).

Each extractor carries a stable ``name``, the ``weights_sha256`` of its weights and a
``preprocessing_version``; all three are recorded beside every score and key the stats cache.
"""
from __future__ import annotations

import inspect
from typing import ClassVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from gmbench.device import resolve_device
from gmbench.errors import GmbenchError
from gmbench.metrics.sharding import gather_batches, my_batches
from gmbench.registry import EXTRACTORS


class FeatureExtractor(nn.Module):
    """Base class: subclasses implement ``forward(uint8 [N,C,H,W]) -> (features [N,D], logits [N,K] | None)``."""

    name: ClassVar[str]
    feature_dim: ClassVar[int]
    preprocessing_version: ClassVar[str] = "1"

    def __init__(self, weights_sha256: str, num_classes: int | None):
        super().__init__()
        self.weights_sha256 = weights_sha256
        self.num_classes = num_classes  # None when the weights have no classifier head

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        """Where its weights live (the CPU for a network without parameters)."""
        return next(iter(self.parameters()), torch.empty(0)).device


@torch.no_grad()
def extract(extractor: FeatureExtractor, images: Tensor, batch_size: int = 500,
            dtype: torch.dtype = torch.float32, group: dist.ProcessGroup | None = None) -> tuple[Tensor, Tensor | None]:
    """Features float64 [N,D] and logits float64 [N,K] (or None) on the CPU.

    Batches stay on the extractor's device until the end: no per-batch host synchronisation.
    ``dtype`` other than float32 runs the network under autocast (bf16 is an opt-in speed option).
    ``group``: split the batches over its ranks (every rank calls with the same images) and gather the
    results, equal to a call without it bit for bit (gmbench.metrics.sharding).
    """
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"extract expects uint8 [N,C,H,W] images, got {images.dtype} {tuple(images.shape)}")
    device = extractor.device
    extractor.eval()
    feats, logits = [], []
    for start in my_batches(len(images), batch_size, group):
        batch = images[start: start + batch_size].to(device, non_blocking=True)  # [b,C,H,W] uint8
        b = len(batch)
        if b < batch_size and len(images) > batch_size:
            # Pad the tail batch: every call then has one shape, so the kernels chosen (and each
            # image's features) do not depend on where the set ends; CPU convs differ below 8 images.
            batch = torch.cat([batch, batch.new_zeros(batch_size - b, *batch.shape[1:])])  # [batch_size,C,H,W]
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            f, lg = extractor(batch)
        f, lg = f[:b], (None if lg is None else lg[:b])
        feats.append(f.float())
        if lg is not None:
            logits.append(lg.float())
    if group is not None:  # this rank's batches -> every batch, in serial order
        # (widths as declared: a rank may have no batch to measure them on)
        feats = [gather_batches(feats, extractor.feature_dim, len(images), batch_size, group)]
        logits = [] if extractor.num_classes is None else [
            gather_batches(logits, extractor.num_classes, len(images), batch_size, group)]
    features = torch.cat(feats).double().cpu()  # [N,D]
    return features, (torch.cat(logits).double().cpu() if logits else None)


def check_extractor_options(name: str, options: dict) -> None:
    """Raise a GmbenchError unless the registered extractor ``name`` takes every one of ``options``."""
    factory = EXTRACTORS.get(name)
    try:
        inspect.signature(factory).bind(device="cpu", **options)
    except TypeError:
        valid = [p for p in inspect.signature(factory).parameters if p != "device"]
        raise GmbenchError(f"Extractor {name!r} does not take options {sorted(options)}; "
                           f"its options are: {', '.join(valid) or '(none)'}.") from None


def check_extractor_input(name: str, image_shape: tuple[int, int, int], where: str) -> None:
    """Raise a GmbenchError when the registered extractor ``name`` takes only images of another shape: its factory
    declares them as ``factory.image_shape`` (C, H, W); a factory without it takes any size."""
    accepted = getattr(EXTRACTORS.get(name), "image_shape", None)
    if accepted is not None and tuple(image_shape) != tuple(accepted):
        raise GmbenchError(f"{where} has images of shape {tuple(image_shape)}, but extractor {name!r} takes only "
                           f"{tuple(accepted)} images, so its scores would be meaningless; score this dataset with an "
                           "extractor that takes its images (inception-v3-tf takes any size, 1 or 3 channels).")


def build_extractor(name: str, device: str | torch.device = "cpu", **options) -> FeatureExtractor:
    """Build the registered extractor ``name`` on ``device``; unknown options are a GmbenchError."""
    check_extractor_options(name, options)
    return EXTRACTORS.get(name)(device=resolve_device(device), **options)
