"""Datasets as resident uint8 tensors: a registered factory's split, checked and cached; training batches drawn on the device.

Root: explicit argument (``--data-root``) > ``GMBENCH_DATA_ROOT`` > ``~/.cache/gmbench/datasets``.
The factories (one file per format) live in ``gmbench.datasets``.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from gmbench.dataset_spec import Dataset
from gmbench.errors import GmbenchError
from gmbench.registry import DATASETS

ENV_DATA_ROOT = "GMBENCH_DATA_ROOT"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_DATA_ROOT):
        return Path(os.environ[ENV_DATA_ROOT]).expanduser()
    return Path.home() / ".cache" / "gmbench" / "datasets"


def contract_problems(dataset: Dataset, images, labels) -> list[str]:
    """What is wrong with a factory's (images, labels) for its declared shape and classes; [] when nothing."""
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        desc = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        return [f"images must be a uint8 tensor [N,C,H,W], got {desc}"]
    problems = []
    if tuple(images.shape[1:]) != tuple(dataset.image_shape):
        problems.append(f"images have shape {tuple(images.shape[1:])} per image where image_shape declares {dataset.image_shape}")
    if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or tuple(labels.shape) != (len(images),):
        desc = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        problems.append(f"labels must be an int64 tensor [{len(images)}] (one per image), got {desc}")
    elif len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= dataset.num_classes):
        problems.append(f"labels span {int(labels.min())}..{int(labels.max())} where num_classes = {dataset.num_classes} "
                        f"allows 0..{dataset.num_classes - 1}")
    if len(images) == 0:
        problems.append("the split holds no images")
    return problems


@lru_cache(maxsize=8)
def _load(name: str, split: str, root: Path, identity: int, fingerprint: str) -> tuple[Tensor, Tensor]:
    """The checked split; the registered object's ``identity`` and its ``fingerprint`` key the cache, so a dataset
    redefined under the same name, or whose file was edited, is read anew."""
    dataset = DATASETS.get(name)
    if split not in dataset.splits:
        raise GmbenchError(f"Dataset {name!r} has no split {split!r}; splits: {', '.join(dataset.splits)}.")
    images, labels = dataset.load(split, root)
    problems = contract_problems(dataset, images, labels)
    if problems:
        raise GmbenchError(f"Dataset {name!r} ({split}) broke the dataset contract: {'; '.join(problems)}. Its factory "
                           f"({type(dataset).__name__}.load) must return uint8 images [N,*image_shape] and int64 labels "
                           "[N] below num_classes.")
    return images, labels


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None) -> tuple[Tensor, Tensor]:
    """Images uint8 [N,C,H,W] and labels int64 [N] of one split (cached per process; do not modify)."""
    dataset, root = DATASETS.get(name), data_root(root).resolve()
    return _load(name, split, root, id(dataset), dataset.fingerprint(root))


def dataset_fingerprint(name: str, root: str | os.PathLike | None = None) -> str:
    """What changes when dataset ``name``'s data does ("" for fixed data such as MNIST): part of the stats cache key."""
    return DATASETS.get(name).fingerprint(data_root(root).resolve())


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
