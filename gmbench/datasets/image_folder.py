"""A dataset of image files: ``<path>/train/<class>/*.png`` and ``<path>/test/<class>/*.png`` (or .jpg, .jpeg).

One sub-folder per class; class index = position of the folder's name among the sorted names of
``train/``'s sub-folders (``test/`` may lack classes, not add them). Files are read with Pillow in
sorted order. The first training image decides the channels: grayscale ("L") gives 1 channel, any
other mode 3 (RGB; alpha is dropped); every image is converted to that. All images must have one
size: a file of another size is an error naming it. The list of files with their sizes and
modification times keys cached reference statistics.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from gmbench.dataset_spec import Dataset
from gmbench.errors import GmbenchError

SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ImageFolderDataset(Dataset):
    """Images in per-class sub-folders of ``path/train`` and ``path/test`` (see the module docstring)."""

    path: Path
    classes: tuple[str, ...] = field(init=False)
    image_shape: tuple[int, int, int] = field(init=False)
    num_classes: int = field(init=False)

    def __post_init__(self):
        path = Path(self.path).expanduser().resolve()
        object.__setattr__(self, "path", path)
        if not (path / "train").is_dir() or not (path / "test").is_dir():
            raise GmbenchError(f"The image-folder dataset {path} needs sub-folders train/ and test/, each with one "
                               "sub-folder of images per class.")
        classes = tuple(sorted(p.name for p in (path / "train").iterdir() if p.is_dir()))
        object.__setattr__(self, "classes", classes)
        files = self.files("train")
        if not files:
            raise GmbenchError(f"{path / 'train'} holds no class sub-folder with {', '.join(SUFFIXES)} images.")
        with Image.open(files[0][0]) as first:
            shape = (1 if first.mode == "L" else 3, first.height, first.width)
        object.__setattr__(self, "image_shape", shape)
        object.__setattr__(self, "num_classes", len(classes))

    def files(self, split: str) -> list[tuple[Path, int]]:
        """(image file, class index) of a split, sorted by class, then file name."""
        folder = self.path / split
        unknown = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in self.classes)
        if unknown:
            raise GmbenchError(f"{folder} has class folders {', '.join(unknown)} that {self.path / 'train'} lacks; "
                               "the training split names the classes.")
        return [(f, k) for k, name in enumerate(self.classes) if (folder / name).is_dir()
                for f in sorted((folder / name).iterdir()) if f.suffix.lower() in SUFFIXES]

    def _read(self, file: Path) -> np.ndarray:
        """One image as uint8 [H,W,C] in the dataset's channels; GmbenchError naming the file when its size differs."""
        with Image.open(file) as img:
            if (img.height, img.width) != self.image_shape[1:]:
                raise GmbenchError(f"{file} is {img.width}x{img.height} pixels where the dataset's images are "
                                   f"{self.image_shape[2]}x{self.image_shape[1]} (set by its first training image); "
                                   "resize every image to one size.")
            return np.asarray(img.convert("L" if self.image_shape[0] == 1 else "RGB")).reshape(*self.image_shape[1:], -1)

    def load(self, split: str, root: Path) -> tuple[Tensor, Tensor]:
        files = self.files(split)
        if not files:
            raise GmbenchError(f"{self.path / split} holds no {', '.join(SUFFIXES)} images in class sub-folders.")
        images = torch.from_numpy(np.stack([self._read(f) for f, _ in files]))  # [N,H,W,C] uint8
        labels = torch.tensor([k for _, k in files], dtype=torch.int64)  # [N]
        return images.permute(0, 3, 1, 2).contiguous(), labels  # [N,C,H,W]

    def fingerprint(self, root: Path) -> str:
        digest = hashlib.sha256()
        for split in self.splits:
            for file, k in self.files(split):
                stat = file.stat()
                digest.update(f"{file.relative_to(self.path)}|{k}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()
