"""A new user's mistakes: one paragraph on stderr, exit code 2, no traceback."""
import gzip

import pytest
import torch

from gmbench.cli import main
from tests.conftest import requires_mnist

TINY = """
datasets = ["{dataset}"]
[budget]
steps = 2
batch_size = 8
[metrics]
names = ["fid"]
n_samples = 16
[models.{model}]
{extra}
"""


def run_cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def write_suite(tmp_path, model="dcgan", dataset="mnist", extra=""):
    path = tmp_path / "s.toml"
    path.write_text(TINY.format(model=model, dataset=dataset, extra=extra))
    return str(path)


def assert_one_paragraph(code, err, *fragments):
    assert code == 2
    assert err.startswith("gmbench: error: ") and "Traceback" not in err
    assert "\n\n" not in err.strip()
    for fragment in fragments:
        assert fragment in " ".join(err.split())


@pytest.mark.parametrize("kwargs, fragments", [
    (dict(model="dcgann"), ["Unknown model 'dcgann'", "Did you mean 'dcgan'?"]),
    (dict(dataset="mnistt"), ["Unknown dataset 'mnistt'", "mnist"]),
    (dict(extra="lrr = 1e-4"), ["unknown key 'lrr'", "Valid keys:", "lr"]),
    (dict(extra='lr = "fast"'), ["lr='fast' has the wrong type; expected float"]),
])
def test_suite_mistakes(tmp_path, capsys, kwargs, fragments):
    assert_one_paragraph(*run_cli(capsys, "run", write_suite(tmp_path, **kwargs), "--out", str(tmp_path / "o")), *fragments)


def test_malformed_toml(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[budget\nsteps = 3\n")
    assert_one_paragraph(*run_cli(capsys, "run", str(path)), "is not valid TOML")


@pytest.mark.parametrize("argv, fragments", [
    (["--set", "dcgan.lr=abc"], ["lr='abc' has the wrong type"]),
    (["--set", "dcgan.nope=1"], ["unknown key 'nope'"]),
    (["--set", "lr=1"], ["SCOPE.KEY=VALUE"]),
    (["--seeds", "0,x"], ["--seeds"]),
    (["--models", "vae9"], ["Model 'vae9' is not in suite"]),
    (["--checkpoint-every", "-1"], ["--checkpoint-every -1: expected seconds >= 0"]),
])
def test_command_line_mistakes(capsys, argv, fragments):
    assert_one_paragraph(*run_cli(capsys, "run", "smoke", *argv), *fragments)


def test_unknown_suite(capsys):
    assert_one_paragraph(*run_cli(capsys, "run", "smokey"), "Unknown suite 'smokey'", "smoke")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu(tmp_path, capsys):
    assert_one_paragraph(*run_cli(capsys, "run", "smoke", "--device", "cuda", "--out", str(tmp_path / "o")),
                         "'cuda' was requested", "no CUDA GPU")


def test_missing_data_offline(tmp_path, capsys, monkeypatch):
    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr("gmbench.datasets.idx.IdxDataset._download", offline)
    code, err = run_cli(capsys, "run", "smoke", "--data-root", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert_one_paragraph(code, err, "GMBENCH_DATA_ROOT", "MNIST/raw/train-images-idx3-ubyte")


def copy_of_mnist(tmp_path):
    """A data root under ``tmp_path`` holding a copy of MNIST's files, to damage; returns its MNIST/raw."""
    from gmbench.data import data_root

    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for src in (data_root() / "MNIST" / "raw").glob("*.gz"):
        (raw / src.name).write_bytes(src.read_bytes())
    return raw


@requires_mnist
def test_truncated_idx_file(tmp_path, capsys):
    images = copy_of_mnist(tmp_path) / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:100000]))
    code, err = run_cli(capsys, "run", "smoke", "--data-root", str(tmp_path / "root"), "--out", str(tmp_path / "o"))
    assert_one_paragraph(code, err, "train-images-idx3-ubyte.gz", "truncated")


def test_debug_shows_traceback(capsys):
    from gmbench.errors import GmbenchError

    with pytest.raises(GmbenchError):
        main(["--debug", "run", "smokey"])


@pytest.mark.parametrize("argv, fragments", [
    (["--set", "dcgan.width=-3"], ["[models.dcgan]: width must be a finite number >= 1, got -3"]),
    (["--set", "dcgan.width=0"], ["width must be a finite number >= 1, got 0"]),
    (["--set", "model.lr=-1"], ["lr must be a finite number > 0, got -1.0"]),
    (["--device", "mps"], ["Device 'mps' is not supported", "use cpu, cuda, cuda:N or auto"]),
    (["--device", "meta"], ["Device 'meta' is not supported"]),
    (["--set", "metrics.reference=val"], ["reference split 'val' does not exist for dataset 'mnist'"]),
    (["--set", "metrics.dtype=fp64"], ["Unknown dtype 'fp64'"]),
    (["--set", "budget.batch_size=60001"], ["batch_size 60001 is larger than the 60000 training images"]),
])
def test_values_that_can_never_work_stop_run_before_any_job(tmp_path, capsys, argv, fragments):
    out = tmp_path / "o"
    assert_one_paragraph(*run_cli(capsys, "run", "smoke", "--out", str(out), *argv), *fragments)
    assert not out.exists()


def _truncated_weights(path):
    torch.save({"w": torch.zeros(10000)}, path)
    path.write_bytes(path.read_bytes()[:20000])
    return path


@requires_mnist  # the preflight reads the data before it builds the extractors
@pytest.mark.parametrize("weights, fragments", [
    (lambda tmp: tmp / "nowhere.pt", ["Inception weights file", "nowhere.pt", "does not exist"]),
    (lambda tmp: _truncated_weights(tmp / "cut.pt"), ["Cannot read Inception weights", "cut.pt"]),
])
def test_unreadable_inception_weights_stop_run_before_any_job(tmp_path, capsys, monkeypatch, weights, fragments):
    monkeypatch.setenv("GMBENCH_INCEPTION_WEIGHTS", str(weights(tmp_path)))
    out = tmp_path / "o"
    code, err = run_cli(capsys, "run", "smoke", "--set", "metrics.extractors=mnist-lenet,inception-v3-tf", "--out", str(out))
    assert_one_paragraph(code, err, *fragments)
    assert not out.exists()


@pytest.fixture
def headless_extractor():
    """An extractor without a classifier head, as Inception weights without the softmax layer."""
    from gmbench.metrics.features import FeatureExtractor
    from gmbench.registry import EXTRACTORS

    class Headless(FeatureExtractor):
        name, feature_dim = "test-headless", 4

        def forward(self, images):
            return images.float().flatten(1)[:, :4], None

    EXTRACTORS.register(Headless.name, lambda device="cpu": Headless("0" * 64, None))
    yield Headless.name
    EXTRACTORS.unregister(Headless.name)


@requires_mnist
def test_metric_the_extractor_cannot_compute_stops_run_before_any_job(tmp_path, capsys, headless_extractor):
    out = tmp_path / "o"
    code, err = run_cli(capsys, "run", "smoke", "--set", f"metrics.extractors={headless_extractor}",
                        "--set", "metrics.names=fid,is", "--out", str(out))
    assert_one_paragraph(code, err, "Metrics is need classifier logits", "'test-headless'")
    assert not out.exists()


@requires_mnist
def test_corrupt_test_labels_stop_run_before_any_job(tmp_path, capsys):
    labels = copy_of_mnist(tmp_path) / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:2000])  # a cut-off download
    out = tmp_path / "o"
    code, err = run_cli(capsys, "run", "smoke", "--data-root", str(tmp_path / "root"), "--out", str(out))
    assert_one_paragraph(code, err, "t10k-labels-idx1-ubyte.gz", "corrupted or truncated")
    assert not out.exists()


@pytest.fixture
def sample_file(tmp_path):
    import numpy as np

    path = tmp_path / "samples.npy"
    np.save(path, np.zeros((16, 28, 28), dtype=np.uint8))
    return str(path)


@pytest.mark.parametrize("argv, fragments", [
    (["eval", "{samples}", "--device", "mps"], ["Device 'mps' is not supported"]),
    (["eval", "{samples}", "--batch-size", "0"], ["--batch-size 0", "positive integer"]),
    (["stats", "mnist", "--device", "mps"], ["Device 'mps' is not supported"]),
    (["stats", "mnist", "--batch-size", "-1"], ["--batch-size -1"]),
    (["train-classifier", "--device", "nonsense", "--out", "{tmp}/w.pt"], ["Unknown device 'nonsense'"]),
    (["train-classifier", "--device", "mps", "--out", "{tmp}/w.pt"], ["Device 'mps' is not supported"]),
    pytest.param(["train-classifier", "--device", "cuda", "--out", "{tmp}/w.pt"], ["no CUDA GPU"],
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")),
])
def test_other_commands_refuse_bad_devices_and_batch_sizes(tmp_path, capsys, sample_file, argv, fragments):
    argv = [a.format(samples=sample_file, tmp=tmp_path) for a in argv]
    assert_one_paragraph(*run_cli(capsys, *argv), *fragments)
    assert not (tmp_path / "w.pt").exists()


def test_report_into_read_only_folder(tmp_path, capsys, monkeypatch):
    import pathlib

    from tests.report_runs import make_run

    run = make_run(tmp_path)
    read_only = tmp_path / "ro"
    mkdir = pathlib.Path.mkdir

    def denied(self, *args, **kwargs):  # what a read-only parent folder does (root ignores chmod, so fake it)
        if self.is_relative_to(read_only):
            raise PermissionError(13, "Permission denied", str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", denied)
    code, err = run_cli(capsys, "report", str(run), "--out", str(read_only / "report"))
    assert_one_paragraph(code, err, f"Cannot write the report into {read_only / 'report'}: Permission denied",
                         "--out")
