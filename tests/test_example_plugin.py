"""The example plugin under examples/ (a model, an extractor, a metric, a sampler and a dataset) installs with pip
into this environment, passes its own contract-kit tests, runs its suite through gmbench, and uninstalls."""
import csv
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "gmbench-example-plugin"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def _run(cmd: list, cwd: Path) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _installed() -> bool:
    try:
        distribution("gmbench-example-plugin")
    except PackageNotFoundError:
        return False
    return True


@pytest.fixture
def installed_example(tmp_path):
    """The example package pip-installed (from a copy: building leaves no build/ in the checkout), then uninstalled.
    Skipped where it is installed already: the test would remove the user's copy."""
    if _installed():
        pytest.skip("gmbench-example-plugin is installed here; this test installs and uninstalls it itself")
    source = tmp_path / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    _run([*PIP, "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", source], tmp_path)
    try:
        yield source
    finally:
        _run([*PIP, "uninstall", "--yes", "--quiet", "gmbench-example-plugin"], tmp_path)
        assert not _installed(), "uninstalling the example left it installed"


def test_example_plugin_installs_passes_its_tests_and_runs_its_suite(installed_example, tmp_path):
    listing = _run([sys.executable, "-m", "gmbench", "list"], tmp_path)
    for name in ("pixel-gaussian", "pooled-pixels", "mean-l2", "midpoint", "bars28"):
        assert any(line.split()[0] == name and line.split()[-1] == "gmbench-example-plugin"
                   for line in listing.splitlines() if line.strip()), listing
    _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", installed_example / "tests"], tmp_path)

    out = tmp_path / "run"
    suite = installed_example / "gmbench_example" / "suites" / "example.toml"
    _run([sys.executable, "-m", "gmbench", "run", suite, "--out", out, "--device", "cpu", "--quiet"], tmp_path)
    with open(out / "records.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert {r["dataset"] for r in records} == {"bars28"}
    scored = {(r["model"], r["variant"], r["metric"]): r for r in records if r["extractor"] == "pooled-pixels"}
    rows = [("pixel-gaussian", ""), ("flow-matching", ""), ("flow-matching", "midpoint-2")]
    for row in rows:
        for metric in ("fid", "mean-l2", "mean-l2_max"):
            assert row + (metric,) in scored, (row, metric, sorted(scored))
            assert float(scored[row + (metric,)]["value"]) > 0
    nfe = {(r["model"], r["variant"]): float(r["value"]) for r in records if r["metric"] == "nfe"}
    assert nfe[("flow-matching", "")] == nfe[("flow-matching", "midpoint-2")] == 4
    assert scored[("pixel-gaussian", "", "mean-l2")]["higher_is_better"] == "False"

