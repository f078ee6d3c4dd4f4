"""Atomic file writes: a temporary file in the same folder, fsync, then rename over the target.

A crash or SIGKILL leaves either the old file or the new one, never half of one. The temporary
files carry a name of gmbench's own, ``.<name>.gmbench-<host>-<pid>-<random>.tmp``, so that
``remove_stale_temporaries`` removes only what a dead gmbench process on this host left behind:
never a user's file, never a live process's file, never another host's on a shared filesystem.
Also the sha256 of a file, hashed once per path, size and mtime (weights files, datasets named by path).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

_TMP_TAG = "gmbench"
_TMP_NAME = re.compile(r"^\..+\.gmbench-(?P<host>[A-Za-z0-9_.-]+)-(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_TMP_TAG}-{_host()}-{os.getpid()}-", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def is_stale_temporary(path: Path) -> bool:
    """True for a temporary file of ``atomic_path`` whose writer (this host, that pid) is no longer alive."""
    m = _TMP_NAME.match(path.name)
    return bool(m) and m["host"] == _host() and int(m["pid"]) != os.getpid() and not is_alive(int(m["pid"]))


def remove_stale_temporaries(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Delete the stale gmbench temporaries in ``folder`` (and below it when ``recursive``); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    removed = []
    for path in candidates:
        if path.is_file() and is_stale_temporary(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@lru_cache(maxsize=16)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of the file, hashed once per process for a given path, mtime and size (~0.4 s for 87 MB)."""
    path = Path(path)
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
