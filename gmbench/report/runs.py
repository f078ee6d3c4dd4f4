"""Run folders as the report commands see them: records plus the manifest, checked for content."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gmbench.errors import GmbenchError
from gmbench.report.records import MANIFEST_FILE, RECORDS_FILE, load_manifest, load_records


@dataclass(frozen=True)
class Run:
    """One run folder (or records.csv, or folder of runs): its records and the manifests found."""

    path: Path
    records: pd.DataFrame
    manifests: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.path)

    def manifest_values(self, key: str) -> list[str]:
        """The distinct values of one manifest key over this run's manifests, in order."""
        return list(dict.fromkeys(str(m.get(key, "")) for m in self.manifests if m.get(key) not in (None, "")))


def _manifest_dirs(path: Path) -> list[Path]:
    if path.is_file():
        path = path.parent
    if (path / MANIFEST_FILE).is_file():
        return [path]
    return sorted(p.parent for p in path.glob(f"*/{MANIFEST_FILE}") if (p.parent / RECORDS_FILE).is_file())


def read_records(path: str | os.PathLike) -> pd.DataFrame:
    """``load_records`` with a cell of the wrong type (text in ``value``, say) as a GmbenchError."""
    try:
        return load_records(path)
    except (ValueError, TypeError) as exc:
        raise GmbenchError(f"{path}: a records.csv holds a value of the wrong type ({exc}); "
                           "was it edited by hand or written by another tool?") from None


def load_run(path: str | os.PathLike) -> Run:
    """Load a run; a run without any record rows is a GmbenchError (nothing to report or compare)."""
    path = Path(path)
    if not path.exists():
        raise GmbenchError(f"{path} does not exist; pass a run folder such as results/runs/<suite>-<timestamp>.")
    records = read_records(path)
    if records.empty:
        raise GmbenchError(f"{path} holds no records: the run wrote a records.csv without rows (did every job fail to start?).")
    return Run(path, records, [load_manifest(d) for d in _manifest_dirs(path)])


def find_runs(results_dir: str | os.PathLike) -> list[Path]:
    """Every run folder (records.csv and manifest.json side by side) below ``results_dir``."""
    root = Path(results_dir)
    if not root.is_dir():
        raise GmbenchError(f"{root} is not a folder; pass the folder that holds run folders (e.g. results/).")
    return sorted(p.parent for p in root.rglob(RECORDS_FILE) if (p.parent / MANIFEST_FILE).is_file())
