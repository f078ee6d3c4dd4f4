"""A dataset in one ``.npz`` file: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Images are uint8, either [N,H,W] (grayscale), [N,H,W,C] (channels last, as numpy, Keras and CIFAR
keep them) or [N,C,H,W] (channels first, as torch keeps them), with C = 1 or 3: a last axis of
1 or 3 is read as channels last. Labels are integers [N] in [0, K); K = the largest label + 1.
Shapes and labels are read when the dataset is defined (array headers only for the images), the
images when a split is loaded. The file's sha256 keys cached reference statistics.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gmbench.dataset_spec import Dataset
from gmbench.errors import GmbenchError
from gmbench.io import file_sha256

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_SPLIT_ARRAYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(C, H, W) of one image of an image array of ``shape``, or None when it is no image layout gmbench reads."""
    if len(shape) == 3:
        return (1, *shape[1:])
    if len(shape) == 4 and shape[3] in (1, 3):
        return (shape[3], shape[1], shape[2])
    if len(shape) == 4 and shape[1] in (1, 3):
        return tuple(shape[1:])
    return None


def _header(archive: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the array ``name`` of an npz archive, reading its header only."""
    with archive.open(f"{name}.npy") as fh:
        fmt = np.lib.format
        read = fmt.read_array_header_1_0 if fmt.read_magic(fh) == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(fh)
    return shape, dtype


@dataclass(frozen=True)
class NpzDataset(Dataset):
    """The arrays of one ``.npz`` file (see the module docstring for the layout)."""

    path: Path
    image_shape: tuple[int, int, int] = field(init=False)
    num_classes: int = field(init=False)

    def __post_init__(self):
        path = Path(self.path).expanduser().resolve()
        object.__setattr__(self, "path", path)
        if not path.is_file():
            raise GmbenchError(f"The npz dataset file {path} does not exist (or is not a file).")
        try:
            with zipfile.ZipFile(path) as archive:
                missing = [a for a in ARRAYS if f"{a}.npy" not in archive.namelist()]
                if missing:
                    raise GmbenchError(f"{path} has no array {', '.join(missing)}; an npz dataset holds {', '.join(ARRAYS)}.")
                headers = {a: _header(archive, a) for a in ("x_train", "x_test")}
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise GmbenchError(f"Cannot read {path} as an .npz file ({exc}); write it with numpy.savez.") from None
        shapes = {a: _chw(shape) for a, (shape, _) in headers.items()}
        for a, (shape, dtype) in headers.items():
            if dtype != np.uint8 or shapes[a] is None:
                raise GmbenchError(f"{path}: {a} is {dtype} {shape}; expected uint8 images [N,H,W], [N,H,W,C] or "
                                   "[N,C,H,W] with C = 1 or 3.")
        if shapes["x_train"] != shapes["x_test"]:
            raise GmbenchError(f"{path}: x_train holds images of shape {shapes['x_train']} and x_test of {shapes['x_test']}; "
                               "both splits must have one image shape.")
        labels = [self._labels(a) for a in ("y_train", "y_test")]
        object.__setattr__(self, "image_shape", shapes["x_train"])
        object.__setattr__(self, "num_classes", int(max(int(y.max(initial=0)) for y in labels)) + 1)

    def _labels(self, name: str) -> np.ndarray:
        with np.load(self.path, allow_pickle=False) as arrays:
            y = arrays[name]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise GmbenchError(f"{self.path}: {name} is {y.dtype} {y.shape}; expected non-negative integer labels [N].")
        return y

    def load(self, split: str, root: Path) -> tuple[Tensor, Tensor]:
        x_name, y_name = _SPLIT_ARRAYS[split]
        with np.load(self.path, allow_pickle=False) as arrays:
            x = arrays[x_name]
        images = torch.from_numpy(np.ascontiguousarray(x))  # [N,H,W], [N,H,W,C] or [N,C,H,W] uint8
        if images.dim() == 3:
            images = images.unsqueeze(1)  # [N,1,H,W]
        elif tuple(images.shape[1:]) != self.image_shape:
            images = images.permute(0, 3, 1, 2).contiguous()  # [N,C,H,W] from channels last
        labels = self._labels(y_name)
        if len(labels) != len(images):
            raise GmbenchError(f"{self.path}: {x_name} holds {len(images)} images but {y_name} {len(labels)} labels.")
        return images, torch.from_numpy(labels.astype(np.int64))  # [N] int64

    def fingerprint(self, root: Path) -> str:
        return file_sha256(self.path)
