"""Tidy (long-format) result records: one row per job and measured quantity.

A run folder holds ``records.csv`` (these rows), ``manifest.json`` (provenance), ``jobs/``
(one JSON per job with its status, config and error), ``samples/`` and ``checkpoints/``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from gmbench.errors import GmbenchError
from gmbench.io import atomic_path

COLUMNS = [
    "run_id", "suite", "model", "family", "variant", "dataset", "seed", "metric", "value", "unit",
    "higher_is_better", "extractor", "extractor_sha256", "n_samples", "device", "dtype", "status",
    "train_steps", "train_time", "host", "world_size", "speed",
]
# Columns added after records were first kept in git: older records.csv files load with them empty.
# train_steps / train_time: where in training a row was measured (curve points and time_to_* rows).
# host: the machine a job ran on (distributed runs and shards spread a suite over machines).
# world_size: how many processes trained the job together (data-parallel; 1 for every older job).
# speed: the speed options a job ran with (gmbench.bench.speed.speed_label), "plain" for none.
LATER_COLUMNS = {"train_steps": float("nan"), "train_time": float("nan"), "host": "", "world_size": 1, "speed": ""}
DTYPES = {
    "run_id": "string", "suite": "string", "model": "string", "family": "string", "variant": "string",
    "dataset": "string", "seed": "Int64", "metric": "string", "value": "float64", "unit": "string",
    "higher_is_better": "boolean", "extractor": "string", "extractor_sha256": "string", "n_samples": "Int64",
    "device": "string", "dtype": "string", "status": "string", "train_steps": "Int64", "train_time": "float64",
    "host": "string", "world_size": "Int64", "speed": "string",
}
RECORDS_FILE = "records.csv"
MANIFEST_FILE = "manifest.json"


def to_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows (dicts with the COLUMNS keys; missing ones empty) -> a typed DataFrame in column order."""
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    return frame.astype(DTYPES)


def write_records(rows: Iterable[dict] | pd.DataFrame, path: str | os.PathLike) -> None:
    frame = rows if isinstance(rows, pd.DataFrame) else to_frame(rows)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _read_one(csv: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(csv, dtype={"variant": "string", "extractor": "string", "extractor_sha256": "string",
                                             "unit": "string", "host": "string", "speed": "string"},
                            keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GmbenchError(f"{csv} is not a readable records CSV: {exc}") from None
    for col, default in LATER_COLUMNS.items():
        if col not in frame.columns:
            frame[col] = default
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise GmbenchError(f"{csv} is missing the record columns {', '.join(missing)}; is it a gmbench records.csv?")
    frame = frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]]
    for col in ("variant", "extractor", "extractor_sha256", "unit", "host", "speed"):
        frame[col] = frame[col].fillna("")
    return frame.astype(DTYPES)


def load_records(*paths: str | os.PathLike) -> pd.DataFrame:
    """Records of one or many runs: each path is a run folder, a records.csv, or a folder of runs."""
    csvs: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            csvs.append(path)
        elif (path / RECORDS_FILE).is_file():
            csvs.append(path / RECORDS_FILE)
        elif path.is_dir() and (found := sorted(path.glob(f"*/{RECORDS_FILE}"))):
            csvs.extend(found)
        else:
            raise GmbenchError(f"{path} is not a gmbench run: no {RECORDS_FILE} in it or in its sub-folders.")
    if not csvs:
        raise GmbenchError("No run given: pass a run folder, a records.csv or a folder of runs.")
    return pd.concat([_read_one(c) for c in csvs], ignore_index=True)


def load_manifest(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        raise GmbenchError(f"{run_dir} is not a gmbench run folder: {MANIFEST_FILE} is missing.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GmbenchError(f"{path} is not valid JSON: {exc}") from None
