"""Datasets a suite defines by kind and path: ``[datasets.NAME]`` tables with ``kind = "npz"`` or ``"image-folder"``.

NAME is registered for the process (a later suite may define it again, to another path; a built-in or
plugin name is never replaced) and is what records, job ids and file names carry. A relative ``path``
is read from the working directory. An empty ``[datasets.NAME]`` table names a registered dataset.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gmbench.datasets.image_folder import ImageFolderDataset
from gmbench.datasets.npz import NpzDataset
from gmbench.errors import GmbenchError
from gmbench.registry import DATASETS

KINDS = {"npz": NpzDataset, "image-folder": ImageFolderDataset}
_defined: set[str] = set()  # names registered here, which a later definition may replace


def define_dataset(name: str, table: dict[str, Any], where: str) -> None:
    """Register ``name`` as the dataset ``table`` ({kind, path}) describes; an empty table must name a registered one."""
    if not table:
        DATASETS.get(name)  # an unknown name raises, listing the known ones
        return
    kind, path = table.get("kind"), table.get("path")
    if set(table) != {"kind", "path"} or kind not in KINDS or not isinstance(path, str) or not path:
        raise GmbenchError(f"{where} [datasets.{name}]: expected kind = one of {', '.join(map(repr, KINDS))} and "
                           f"path = \"...\" (a file or folder), and no other keys; got {table!r}.")
    if name in DATASETS and name not in _defined:
        raise GmbenchError(f"{where} [datasets.{name}]: {name!r} is already a registered dataset; give your "
                           f"{kind} dataset another name.")
    dataset = KINDS[kind](Path(path))
    DATASETS.unregister(name)
    DATASETS.register(name, dataset)
    _defined.add(name)
