"""Atomic writes and the cleanup of their temporaries: only gmbench's own, only a dead writer's."""
import os
import subprocess
import sys

from gmbench.io import atomic_path, is_stale_temporary, remove_stale_temporaries, write_text


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    write_text(target, "old")
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            assert tmp.name.startswith(".a.txt.gmbench-") and tmp.name.endswith(".tmp")
            raise RuntimeError("crash mid-write")
    except RuntimeError:
        pass
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_cleanup_removes_a_dead_writers_temporaries_and_nothing_else(tmp_path):
    from gmbench.io import _host

    host = _host()
    (tmp_path / "sub").mkdir()
    dead = tmp_path / "sub" / f".records.csv.gmbench-{host}-{_dead_pid()}-abc123.tmp"
    live = tmp_path / f".records.csv.gmbench-{host}-{os.getpid()}-abc123.tmp"  # this process: in flight
    parent = tmp_path / f".x.gmbench-{host}-{os.getppid()}-abc123.tmp"  # a live process
    other_host = tmp_path / f".x.gmbench-otherhost-{_dead_pid()}-abc123.tmp"  # may be alive over there
    users = [tmp_path / ".session.tmp", tmp_path / "sub" / ".draft.tmp", tmp_path / "notes.tmp"]
    for path in [dead, live, parent, other_host, *users]:
        path.write_text("x")
    assert remove_stale_temporaries(tmp_path) == []  # not recursive: the dead one is in sub/
    assert remove_stale_temporaries(tmp_path, recursive=True) == [dead]
    assert not dead.exists() and all(p.exists() for p in [live, parent, other_host, *users])
    assert not any(is_stale_temporary(p) for p in [live, parent, other_host, *users])
