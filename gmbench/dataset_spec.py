"""What a registered dataset is: a factory of uint8 images and int64 labels per split, with its shape and classes.

Its own module, below both ``registry`` (which checks what is registered as a dataset) and ``data``
(which loads a split and checks what the factory returned), so that the two import it rather than each other.
It imports no torch: ``import gmbench`` stays light.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor


class Dataset:
    """Base class of registered datasets (the built-ins, those a suite names by path, and plugins').

    ``load(split, root)`` returns images uint8 [N,*image_shape] and labels int64 [N] in [0, num_classes);
    the harness checks both and names the dataset when they are wrong. ``root`` is the data root
    (``--data-root`` > ``$GMBENCH_DATA_ROOT`` > ``~/.cache/gmbench/datasets``); a dataset at a fixed path ignores it.
    """

    image_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    splits: tuple[str, ...] = ("train", "test")

    def load(self, split: str, root: Path) -> tuple["Tensor", "Tensor"]:
        raise NotImplementedError

    def count(self, split: str) -> int | None:
        """Images in ``split`` when known without reading the data (the suite then checks batch sizes at load)."""
        return None

    def fingerprint(self, root: Path) -> str:
        """A string that changes when the data does (it keys cached reference statistics); "" for fixed data."""
        return ""


def dataset_problem(obj: Any) -> str:
    """Why ``obj`` cannot be registered as a dataset, or "" when it can."""
    if not isinstance(obj, Dataset):
        return "an instance of a gmbench.dataset_spec.Dataset subclass"
    shape = getattr(obj, "image_shape", None)
    if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape)):
        return f"image_shape as a tuple (C, H, W) of positive ints, got {shape!r}"
    classes = getattr(obj, "num_classes", None)
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        return f"num_classes as an int >= 1, got {classes!r}"
    if not (isinstance(obj.splits, tuple) and obj.splits and all(isinstance(s, str) and s for s in obj.splits)):
        return f"splits as a non-empty tuple of names, got {obj.splits!r}"
    return ""
