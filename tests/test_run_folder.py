"""Run folders that can be trusted: one process per folder, --resume that cannot mix configurations,
exit codes that say whether jobs failed, one-paragraph errors for folders that cannot be used."""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gmbench.bench import session
from gmbench.cli import main
from tests.conftest import requires_mnist

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
needs_mnist = requires_mnist


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished smoke run of seed 0 at 6 steps; tests work on copies of it."""
    out = tmp_path_factory.mktemp("runs") / "smoke"
    assert main(["run", "smoke", "--out", str(out), "--quiet", "--set", "budget.steps=6"]) == 0
    return out


@pytest.fixture
def run(finished, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def _gmbench(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gmbench", *argv], env=ENV, cwd=REPO, **kwargs)


@needs_mnist
def test_run_keeps_files_it_did_not_write(tmp_path):
    out = tmp_path / "D"
    (out / "project" / "sub").mkdir(parents=True)
    (out / "project" / "sub" / ".draft.tmp").write_text("x")
    (out / ".session.tmp").write_text("y")
    assert main(["run", "smoke", "--out", str(out), "--quiet", "--set", "budget.steps=2"]) == 0
    assert (out / "project" / "sub" / ".draft.tmp").read_text() == "x" and (out / ".session.tmp").read_text() == "y"


@needs_mnist
def test_second_process_is_refused_while_the_first_holds_the_folder(tmp_path, capsys):
    out = tmp_path / "run"
    first = _gmbench("run", "smoke", "--out", str(out), "--seeds", "0,1,2", "--quiet")
    lock = out / ".gmbench.lock"
    deadline = time.time() + 120
    while not (lock.exists() and lock.read_text()) and first.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert main(["run", "smoke", "--out", str(out), "--seeds", "0,1,2", "--resume", "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"is in use by gmbench process {first.pid} on host" in err and "choose another --out" in err
    assert first.wait(timeout=300) == 0  # the first run was not disturbed
    jobs = {p.stem: json.loads(p.read_text()) for p in (out / "jobs").glob("*.json")}
    assert sorted(jobs) == ["dcgan-mnist-s0", "dcgan-mnist-s1", "dcgan-mnist-s2"]
    assert {j["status"] for j in jobs.values()} == {"done"} and not lock.exists()


@needs_mnist
def test_resume_refuses_another_configuration_and_names_the_differences(run, capsys):
    manifest = (run / "manifest.json").read_text()
    assert main(["run", "smoke", "--out", str(run), "--resume", "--set", "budget.steps=150", "--seeds", "0,1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "budget.steps: 6 in the run, 150 now (dcgan-mnist-s0)" in err
    assert "jobs that are not in the run: dcgan-mnist-s1 (--extend adds them)" in err
    assert main(["run", "smoke", "--out", str(run), "--resume", "--set", "metrics.n_samples=200"]) == 2
    assert "metrics.n_samples: 128 in the run, 200 now" in " ".join(capsys.readouterr().err.split())
    text = run / "other.toml"
    text.write_text(_manifest(run)["suite_file"].replace("width = 16", "width = 8"))
    assert main(["run", str(text), "--out", str(run), "--resume"]) == 2
    assert "holds a run of suite 'smoke', not 'other'" in " ".join(capsys.readouterr().err.split())
    assert (run / "manifest.json").read_text() == manifest and sorted(p.stem for p in (run / "jobs").iterdir()) == [
        "dcgan-mnist-s0"]


@needs_mnist
def test_resume_of_an_edited_suite_file_names_the_changed_model_config(run, tmp_path, capsys):
    suite = tmp_path / "smoke.toml"  # same suite name, the model's width changed
    suite.write_text(_manifest(run)["suite_file"].replace("width = 16", "width = 8"))
    assert main(["run", str(suite), "--out", str(run), "--resume", "--set", "budget.steps=6"]) == 2
    assert "config.width: 16 in the run, 8 now (dcgan-mnist-s0)" in " ".join(capsys.readouterr().err.split())
    suite.write_text("# a comment changes nothing\n" + _manifest(run)["suite_file"])
    assert main(["run", str(suite), "--out", str(run), "--resume", "--set", "budget.steps=6", "--quiet"]) == 0


@needs_mnist
def test_resume_takes_what_the_command_line_leaves_out_from_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "smoke", "--out", str(out), "--seeds", "1", "--set", "budget.steps=4", "--quiet"]) == 0
    assert main(["run", "smoke", "--out", str(out), "--resume"]) == 0
    assert "dcgan-mnist-s1: already done, skipped" in capsys.readouterr().out
    assert [p.stem for p in (out / "jobs").iterdir()] == ["dcgan-mnist-s1"]
    manifest = _manifest(out)
    assert manifest["seeds"] == [1] and manifest["models"] == ["dcgan"]
    assert manifest["set_options"] == {"budget": {"steps": "4"}} and len(manifest["resumed"]) == 1
    assert manifest["jobs"]["dcgan-mnist-s1"]["budget"]["steps"] == 4


@needs_mnist
def test_extend_adds_seeds_and_the_manifest_records_it(run, capsys):
    assert main(["run", "smoke", "--out", str(run), "--extend", "--seeds", "0,1", "--set", "budget.steps=6"]) == 0
    out = capsys.readouterr().out
    assert "dcgan-mnist-s0: already done, skipped" in out and "2 jobs: 2 done, 0 diverged, 0 failed" in out
    manifest = _manifest(run)
    assert manifest["seeds"] == [0, 1] and sorted(manifest["jobs"]) == ["dcgan-mnist-s0", "dcgan-mnist-s1"]
    assert [e["added"] for e in manifest["extended"]] == [["dcgan-mnist-s1"]]
    assert main(["run", "smoke", "--out", str(run), "--extend", "--seeds", "1", "--set", "budget.steps=6"]) == 2
    assert "jobs of the run left out: dcgan-mnist-s0" in " ".join(capsys.readouterr().err.split())


@needs_mnist
def test_failed_job_exits_1_and_diverged_exits_0_with_a_summary(tmp_path, monkeypatch, capsys):
    from gmbench.models.gan import DCGAN

    monkeypatch.setattr(DCGAN, "train_step", lambda self, x: {"loss": torch.tensor(float("nan"))})
    assert main(["run", "smoke", "--out", str(tmp_path / "a"), "--set", "curve.every_steps=none",
                 "--set", "curve.targets="]) == 0
    assert "1 job: 0 done, 1 diverged, 0 failed" in capsys.readouterr().out

    def boom(self, x):
        raise RuntimeError("boom")

    monkeypatch.setattr(DCGAN, "train_step", boom)
    assert main(["run", "smoke", "--out", str(tmp_path / "b"), "--quiet"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "1 job: 0 done, 0 diverged, 1 failed" in err and "dcgan-mnist-s0.json" in err


@pytest.mark.parametrize("name", ["file", "long"])
def test_unusable_out_path_is_one_paragraph(tmp_path, capsys, name):
    out = tmp_path / ("a" * 300 if name == "long" else "results.txt")
    if name == "file":
        out.write_text("not a folder")
    assert main(["run", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gmbench: error:") and "Traceback" not in err
    err = " ".join(err.split())
    assert ("is a file, not a folder" if name == "file" else "File name too long") in err


@needs_mnist  # the preflight reads the data before the folder is made
def test_read_only_folder_is_one_paragraph(tmp_path, monkeypatch, capsys):
    """Tests run as root, which writes anywhere: the folder's refusal is simulated where the lock is created."""
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["run", "smoke", "--out", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"Cannot create the lock file {tmp_path}/.gmbench.lock: Permission denied" in err


@needs_mnist
def test_jobs_folder_unwritable_after_a_job_ran_says_its_results_were_not_saved(tmp_path, monkeypatch, capsys):
    real = session.write_json

    def jobs_read_only(path, obj):
        if Path(path).parent.name == "jobs":
            raise PermissionError(errno.EACCES, "Permission denied")
        real(path, obj)

    monkeypatch.setattr(session, "write_json", jobs_read_only)
    out = tmp_path / "run"
    assert main(["run", "smoke", "--out", str(out), "--set", "budget.steps=2"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (f"Job dcgan-mnist-s0 ran to the end, but its results could not be saved (--resume runs it again): "
            f"writing {out}/jobs/dcgan-mnist-s0.json failed (Permission denied)") in err


@needs_mnist
@pytest.mark.parametrize("content, problem", [
    ('{"status": "done", "rows": []}', "is not a job record (no job_id)"),
    ('{"job_id": "vae-mnist-s0", "status": "done", "rows": []}', "holds job 'vae-mnist-s0', not 'dcgan-mnist-s0'"),
    ('{"job_id": "dcgan-mnist-s0", "status": "done"}', "is not a whole job record"),
    ("[1, 2", "cannot be read"),
])
def test_resume_with_a_malformed_job_file_names_it(run, capsys, content, problem):
    job = run / "jobs" / "dcgan-mnist-s0.json"
    job.write_text(content)
    assert main(["run", "smoke", "--out", str(run), "--resume"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{job} {problem}" in err and "Traceback" not in err and job.read_text() == content


@needs_mnist
def test_resume_with_a_corrupt_manifest_names_it(run, capsys):
    (run / "manifest.json").write_text('{"suite": "smoke", ')
    assert main(["run", "smoke", "--out", str(run), "--resume"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{run / 'manifest.json'} cannot be read" in err and "start a new run folder" in err


def test_repeated_seeds_are_refused(capsys):
    assert main(["run", "smoke", "--seeds", "0,1,0"]) == 2
    assert "names seed 0 more than once" in capsys.readouterr().err


@needs_mnist
def test_interrupt_message_starts_on_its_own_line(tmp_path):
    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    with log.open("w") as err:
        proc = _gmbench("run", "smoke", "--out", str(out), "--set", "budget.steps=100000", "--set",
                        "curve.every_steps=none", "--set", "curve.targets=", stderr=err, stdout=subprocess.DEVNULL,
                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even if ignored here
        deadline = time.time() + 120
        while "train dcgan-mnist-s0:" not in log.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    text = log.read_text()
    assert re.search(r"(^|[\r\n])gmbench: interrupted; finished jobs are saved", text), text[-300:]
    assert not (out / ".gmbench.lock").exists()


@needs_mnist
def test_resume_of_a_run_from_before_speed_and_extractor_options_reads_them_as_none(run, capsys):
    """Manifests written before the speed options and [metrics.options] existed lack those keys; such a run
    ran every job the plain way with default extractors, so --resume takes it as it is."""
    manifest = _manifest(run)
    del manifest["settings"]["metrics"]["options"]
    for job in manifest["jobs"].values():
        del job["speed"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert main(["run", "smoke", "--out", str(run), "--resume", "--set", "budget.steps=6"]) == 0
    assert "already done, skipped" in capsys.readouterr().out
