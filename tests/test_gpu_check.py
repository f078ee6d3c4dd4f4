"""benchmarks/gpu_check.sh runs on the CPU at tiny sizes (`--device cpu`), so it works on the day a GPU is lent."""
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import inception_weights_path, requires_mnist

REPO = Path(__file__).resolve().parents[1]
STEPS = ["smoke", "timing", "fast-paths", "inception", "standard"]


@requires_mnist
def test_gpu_check_runs_every_step_on_the_cpu_and_writes_its_summary(tmp_path):
    weights = inception_weights_path()
    if not weights.is_file():
        pytest.skip(f"Inception weights not found at {weights}")
    out = tmp_path / "check"
    env = {**os.environ, "GMBENCH_INCEPTION_WEIGHTS": str(weights), "PYTHON": os.sys.executable}
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--device", "cpu", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (out / "summary.md").read_text()
    assert summary == done.stdout.split("gpu_check: standard ...\n", 1)[1]  # printed and written alike
    for step in STEPS:
        assert f"| {step} | ok |" in summary, step
        assert (out / f"{step}.log").is_file()
    assert "timing sanity on cpu" in summary and "within 5%" in summary
    assert "| gan-mlp |" in summary and "| vae |" in summary and "| dcgan |" in summary  # the runs' fid tables
    again = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--device", "cpu", "--out", str(out)], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already holds" in again.stderr  # never over an earlier check's results
