"""Extractor options in suites (``[metrics.options.NAME]``): checked at load, used by every score and by the
start-up check of the weights files, and recorded in the manifest."""
import json

import pytest
import torch

from gmbench.bench.suite import BUILTIN_SUITES, parse_suite
from gmbench.cli import main
from gmbench.errors import GmbenchError
from gmbench.metrics.lenet import SHIPPED_WEIGHTS
from gmbench.io import file_sha256
from gmbench.report.records import load_records
from tests.conftest import requires_mnist

BASE = "[budget]\nsteps = 1\n[models.dcgan]\n"


def test_options_are_parsed_per_extractor():
    suite = parse_suite(BASE + '[metrics.options.mnist-lenet]\nweights = "w.pt"\n', "t")
    assert suite.metrics.options == {"mnist-lenet": {"weights": "w.pt"}}
    assert suite.metrics.options_of("mnist-lenet") == {"weights": "w.pt"} and suite.metrics.options_of("other") == {}
    assert parse_suite(BASE, "t").metrics.options == {}


@pytest.mark.parametrize("table, message", [
    ('[metrics.options.mnist-lenet]\nresize = "tf1"\n', r"does not take options \['resize'\]; its options are: weights"),
    ('[metrics.options.inception-v3-tf]\nresize = "tf1"\n', "uses no extractor 'inception-v3-tf'"),
    ('[metrics]\noptions = 3\n', r"\[metrics.options\] must be a table"),
])
def test_options_a_suite_cannot_use_are_refused_at_load(table, message):
    with pytest.raises(GmbenchError, match=message):
        parse_suite(BASE + table, "t")


@requires_mnist
def test_a_run_builds_the_extractor_with_the_suites_options_and_records_them(tmp_path, capsys):
    weights = tmp_path / "lenet-other.pt"  # "retrained" weights: other values, so another sha256 in the rows
    state = torch.load(SHIPPED_WEIGHTS, weights_only=True)
    torch.save({k: v * 1.01 if v.is_floating_point() else v for k, v in state.items()}, weights)
    weights.with_suffix(".json").write_text(json.dumps({"sha256": file_sha256(weights)}))
    suite = tmp_path / "opts.toml"
    text = (BUILTIN_SUITES / "smoke.toml").read_text()
    suite.write_text(text.replace('reference = "test"', f'reference = "test"\n\n[metrics.options.mnist-lenet]\nweights = "{weights}"'))
    out = tmp_path / "run"
    assert main(["run", str(suite), "--out", str(out), "--quiet", "--set", "budget.steps=2", "--device", "cpu"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["metrics"]["options"] == {"mnist-lenet": {"weights": str(weights)}}
    assert set(load_records(out)["extractor_sha256"].dropna()) - {""} == {file_sha256(weights)}  # curves too
    weights.unlink()  # the start-up check builds the extractor with the same options
    assert main(["run", str(suite), "--out", str(tmp_path / "again"), "--quiet", "--device", "cpu"]) == 2
    assert str(weights) in capsys.readouterr().err and not (tmp_path / "again" / "jobs").exists()
