"""One run folder, one run: an exclusive lock file ``<run>/.gmbench.lock`` held for the life of a run.

The owner takes ``fcntl.flock`` on the lock file and writes into it who holds it (host, pid, start
time) and a random run token. The kernel drops a flock when its holder dies, even by SIGKILL, so a
left-over lock file of a dead run is simply taken over. Filesystems without flock (some NFS mounts:
ENOLCK, EOPNOTSUPP) fall back to creating the file with O_CREAT|O_EXCL: its existence is the lock,
and it counts as stale only when it names this host and a pid that is no longer alive.

Processes of one run cooperate through the token: a process that presents the owner's token
(ranks of a distributed run get it from their launcher, by convention in ``$GMBENCH_RUN_TOKEN``)
is admitted as a member without taking the lock; anyone else is refused. The token guards against
accidents, not against an adversary: it is readable in the lock file.

Shards of one run (``--shard K/N``, separate processes of a job array) each hold a lock of their own,
``.gmbench.lock.shard-K-of-N``: shards of one N work side by side, while a run without --shard and
shards of another N are refused (and refuse them). Lock files are taken and checked, and the
manifest and records.csv rewritten, under ``folder_guard``: a short flock on ``.gmbench.guard``.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import socket
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from gmbench.errors import GmbenchError
from gmbench.io import is_alive

LOCK_FILE = ".gmbench.lock"
GUARD_FILE = ".gmbench.guard"
_SHARD_LOCK = re.compile(r"^\.gmbench\.lock\.shard-(\d+)-of-(\d+)$")
TOKEN_ENV = "GMBENCH_RUN_TOKEN"  # where launchers hand the owner's token to the ranks of a run
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


@contextmanager
def folder_guard(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold a short exclusive flock on the run folder's guard file: one process at a time takes locks, writes the
    manifest or rebuilds records.csv. Where the file cannot be made or flocked, it guards nothing (writes stay
    atomic), and the lock file's own checks say what is wrong with the folder."""
    try:
        fd = os.open(Path(run_dir) / GUARD_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        with suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def lock_name(shard: tuple[int, int] | None) -> str:
    return LOCK_FILE if shard is None else f"{LOCK_FILE}.shard-{shard[0]}-of-{shard[1]}"


class RunLock:
    """``with RunLock(run_dir) as lock:`` owns ``run_dir`` (``lock.owner``, ``lock.token``) or raises
    GmbenchError naming the holder; with the holder's ``token`` it joins as a member instead.
    ``shard=(K, N)`` owns shard K of N of the run, beside its sibling shards."""

    def __init__(self, run_dir: str | os.PathLike, token: str | None = None, shard: tuple[int, int] | None = None):
        self.shard = shard
        self.path = Path(run_dir) / lock_name(shard)
        self.presented = token
        self.token: str | None = None
        self.owner = False
        self.holder: dict = {}  # the lock file's contents: host, pid, started, token, mode
        self._fd: int | None = None
        self._flock = True

    def __enter__(self) -> RunLock:
        with folder_guard(self.path.parent):
            self._acquire()
            if self.owner:
                self._refuse_rivals()
        return self

    def _acquire(self) -> None:
        for _ in range(10):  # a retry is needed only when the file is replaced under us
            if self._try_acquire():
                return
        raise GmbenchError(f"Could not take the lock {self.path}: it kept being replaced by other processes; "
                           "make sure only one gmbench run uses this folder, then run again.")

    def __exit__(self, *exc) -> None:
        if not self.owner:
            return
        if self._same_file():
            with suppress(OSError):  # a folder turned read-only: the file stays, the lock goes with the fd
                self.path.unlink(missing_ok=True)
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
        self._fd, self.owner = None, False

    def _refuse_rivals(self) -> None:
        """Release and refuse where a process that may not share the folder with this one holds a lock of it."""
        for rival in self._rivals():
            probe = RunLock(self.path.parent, shard=rival)
            try:
                probe._acquire()
            except GmbenchError as exc:
                self.__exit__()
                raise GmbenchError(f"{_described(self.shard)} cannot share {self.path.parent} with "
                                   f"{_described(rival).lower()}, which is running: {exc} Shards of one run share its "
                                   "folder only with shards of the same count N.") from None
            probe.__exit__()  # a left-over lock file of a dead process: gone now

    def _rivals(self) -> list[tuple[int, int] | None]:
        """The locks in the folder whose holders may not work beside this one's."""
        found: list[tuple[int, int] | None] = [None] if (self.path.parent / LOCK_FILE).exists() else []
        found += sorted((int(m[1]), int(m[2])) for p in self.path.parent.glob(f"{LOCK_FILE}.shard-*")
                        if (m := _SHARD_LOCK.match(p.name)))
        if self.shard is None:
            return [s for s in found if s is not None]
        return [s for s in found if s is None or s[1] != self.shard[1]]

    def _try_acquire(self) -> bool:
        """Own the lock (True), join as a member (True), refuse (raise), or ask for a retry (False)."""
        try:
            fd, created = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            try:
                fd, created = os.open(self.path, os.O_RDWR), False
            except FileNotFoundError:
                return False  # its owner just removed it
        except OSError as exc:
            raise GmbenchError(f"Cannot create the lock file {self.path}: {exc.strerror}. The run folder must be "
                               "writable; choose another --out or fix its permissions.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return self._join_or_refuse(checked=True)
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                os.close(fd)
                raise
            self._flock = False
            if not created:  # without flock the file's existence is the lock
                os.close(fd)
                return self._join_or_refuse(checked=False)
        self._fd = fd
        if not self._same_file():  # the previous owner removed the file between our open and flock
            os.close(fd)
            self._fd = None
            return False
        self._take(fd)
        return True

    def _take(self, fd: int) -> None:
        self.token, self.owner = secrets.token_hex(16), True
        self.holder = {"host": socket.gethostname(), "pid": os.getpid(),
                       "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "token": self.token, "mode": "flock" if self._flock else "exclusive-file"}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(self.holder) + "\n").encode())
        os.fsync(fd)

    def _same_file(self) -> bool:
        try:
            return self._fd is not None and os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return False

    def _join_or_refuse(self, checked: bool) -> bool:
        """The lock is held (``checked``: flock says its holder is alive); a member joins, a stranger is refused."""
        self.holder = _read_holder(self.path)
        if self.presented is not None and self.presented == self.holder.get("token"):
            self.token = self.presented
            return True
        if not checked and self._stale() and _read_holder(self.path) == self.holder:
            self.path.unlink(missing_ok=True)  # a dead process's lock on this host
            return False
        raise GmbenchError(self._refusal(checked))

    def _stale(self) -> bool:
        pid = self.holder.get("pid")
        return self.holder.get("host") == socket.gethostname() and isinstance(pid, int) and not is_alive(pid)

    def _refusal(self, checked: bool) -> str:
        h = self.holder
        who = (f"gmbench process {h.get('pid')} on host {h.get('host')}, started {h.get('started')}"
               if h else "a gmbench process whose details could not be read")
        token = " The run token presented does not match the run's." if self.presented is not None else ""
        if checked:
            return (f"{self.path.parent} is in use by {who}; its lock is {self.path}.{token} Two processes writing "
                    "one run folder overwrite each other's jobs: wait for that run to end, or choose another --out.")
        return (f"{self.path.parent} is locked by {who} ({self.path}); this filesystem has no flock, so gmbench "
                f"cannot check from here whether that process is alive.{token} If no gmbench process with that pid is "
                f"running on that host, delete {self.path} and run again; otherwise choose another --out.")


def _described(shard: tuple[int, int] | None) -> str:
    return "A run without --shard" if shard is None else f"Shard {shard[0]}/{shard[1]}"


def _read_holder(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}
