"""A built wheel runs on its own: installed away from the checkout, it lists and runs its built-in suites."""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import requires_mnist

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@requires_mnist
def test_installed_wheel_lists_and_runs_the_smoke_suite_away_from_the_checkout(tmp_path):
    source = tmp_path / "source"  # a copy, so that building leaves no build/ or *.egg-info in the checkout
    shutil.copytree(REPO / "gmbench", source / "gmbench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"), str(source)], tmp_path)
    wheel = next((tmp_path / "dist").glob("gmbench-*.whl"))
    # Installed inside another project's git repository, whose commit is not gmbench's.
    project = tmp_path / "project"
    target = project / "site-packages"
    _run(["git", "init", "-q", str(project)], tmp_path)
    _run(["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"], tmp_path)
    _run([*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)], tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}  # replaces the checkout on sys.path
    python = [sys.executable, "-c", "import gmbench; print(gmbench.__file__)"]
    assert Path(_run(python, elsewhere, env).strip()).is_relative_to(target)
    assert "  smoke\n" in _run([sys.executable, "-m", "gmbench", "list"], elsewhere, env)
    out = elsewhere / "run"
    _run([sys.executable, "-m", "gmbench", "run", "smoke", "--out", str(out), "--device", "cpu", "--quiet",
          "--set", "budget.steps=4", "--set", "curve.every_steps=2"], elsewhere, env)
    with open(out / "records.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert {(r["model"], r["status"]) for r in records} == {("dcgan", "done")}
    assert json.loads((out / "manifest.json").read_text())["git_commit"] is None
