"""The run-folder lock: one owner, strangers refused, members of the same run admitted, dead holders replaced."""
import errno
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gmbench.bench import run_lock
from gmbench.bench.run_lock import LOCK_FILE, RunLock
from gmbench.errors import GmbenchError
from tests.test_io import _dead_pid

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["flock", "no-flock"])
def mode(request, monkeypatch):
    """Every case runs with flock and on a filesystem without it (flock raising ENOLCK, as on some NFS)."""
    if request.param == "no-flock":
        def no_flock(fd, operation):
            raise OSError(errno.ENOLCK, "No locks available")

        monkeypatch.setattr(run_lock.fcntl, "flock", no_flock)
    return request.param


def test_owner_writes_who_holds_it_and_removes_it_at_the_end(tmp_path, mode):
    with RunLock(tmp_path) as lock:
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert lock.owner and len(lock.token) == 32
        assert holder == {"host": socket.gethostname(), "pid": os.getpid(), "started": holder["started"],
                          "token": lock.token, "mode": "flock" if mode == "flock" else "exclusive-file"}
    assert not (tmp_path / LOCK_FILE).exists()
    with RunLock(tmp_path) as again:  # free again
        assert again.owner and again.token != lock.token


def test_stranger_is_refused_with_the_holder_named(tmp_path, mode):
    with RunLock(tmp_path):
        with pytest.raises(GmbenchError, match=rf"by gmbench process {os.getpid()} on host") as refused:
            with RunLock(tmp_path):
                pass
        with pytest.raises(GmbenchError, match="token presented does not match"):
            with RunLock(tmp_path, token="0" * 32):
                pass
        assert (tmp_path / LOCK_FILE).exists()  # the refusals left the owner's lock alone
    if mode == "no-flock":
        assert f"delete {tmp_path / LOCK_FILE}" in str(refused.value)
    else:
        assert "wait for that run to end, or choose another --out" in str(refused.value)


def test_member_presenting_the_token_joins_without_taking_the_lock(tmp_path, mode):
    with RunLock(tmp_path) as owner:
        with RunLock(tmp_path, token=owner.token) as member:
            assert not member.owner and member.token == owner.token and member.holder["pid"] == os.getpid()
        assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == owner.token  # still the owner's


def test_lock_file_of_a_dead_holder_is_taken_over(tmp_path, mode):
    dead = {"host": socket.gethostname(), "pid": _dead_pid(), "started": "2026-01-01T00:00:00+00:00",
            "token": "f" * 32, "mode": "flock"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(dead))
    with RunLock(tmp_path) as lock:
        assert lock.owner and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_without_flock_another_hosts_lock_is_never_taken_over(tmp_path, mode):
    other = {"host": "elsewhere", "pid": _dead_pid(), "started": "2026-01-01T00:00:00+00:00", "token": "f" * 32}
    (tmp_path / LOCK_FILE).write_text(json.dumps(other))
    if mode == "flock":  # flock knows nobody holds it, whatever the file says
        with RunLock(tmp_path) as lock:
            assert lock.owner
        return
    with pytest.raises(GmbenchError, match=r"host elsewhere.*this filesystem has no flock.*delete"):
        with RunLock(tmp_path):
            pass
    assert json.loads((tmp_path / LOCK_FILE).read_text()) == other


def test_lock_held_by_another_process_is_released_when_it_is_killed(tmp_path):
    script = (f"import sys, time; from gmbench.bench.run_lock import RunLock\n"
              f"with RunLock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(GmbenchError, match=rf"in use by gmbench process {proc.pid} on host"):
            with RunLock(tmp_path):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (tmp_path / LOCK_FILE).exists()  # SIGKILL left the file; the kernel dropped the flock
    with RunLock(tmp_path) as lock:
        assert lock.owner
