"""`gmbench eval` on .npy / .npz / .pt / PNG-folder sample sets, and each bad input as one paragraph, exit 2."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gmbench.cli import main
from gmbench.data import load_dataset
from tests.conftest import requires_mnist

pytestmark = requires_mnist  # every test here reads MNIST


@pytest.fixture
def images(tmp_path, monkeypatch):
    monkeypatch.setenv("GMBENCH_CACHE", str(tmp_path / "cache"))
    return load_dataset("mnist", "train")[0][:60]  # [60,1,28,28] uint8


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_reads_every_format_to_the_same_scores(tmp_path, images, capsys):
    np.save(tmp_path / "a.npy", images[:, 0].numpy())  # [N,28,28]
    np.savez(tmp_path / "a.npz", images=images.numpy())  # [N,1,28,28]
    torch.save(images, tmp_path / "a.pt")
    (tmp_path / "png").mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im[0].numpy()).save(tmp_path / "png" / f"{i:03d}.png")
    ref = tmp_path / "ref.npy"
    np.save(ref, load_dataset("mnist", "test")[0][:80].numpy())
    results = [run_json(capsys, ["eval", str(tmp_path / name), "--ref", str(ref), "--metrics", "fid,kid"])
               for name in ("a.npy", "a.npz", "a.pt", "png")]
    assert all(r["scores"] == results[0]["scores"] for r in results)
    scores = {s["metric"]: s for s in results[0]["scores"]}
    assert set(scores) == {"fid", "kid", "kid_std"} and scores["fid"]["n_reference"] == 80
    prov = results[0]["provenance"]
    assert prov["extractor"] == "mnist-lenet" and len(prov["weights_sha256"]) == 64
    assert {"seed", "device", "dtype", "torch_version", "n_samples"} <= set(prov)


def test_eval_against_a_dataset_split_with_n_and_a_table(tmp_path, images, capsys):
    np.save(tmp_path / "a.npy", images.numpy())
    result = run_json(capsys, ["eval", str(tmp_path / "a.npy"), "--ref", "mnist:test", "--n", "50", "--metrics", "fid"])
    assert result["scores"][0]["n_samples"] == 50 and result["scores"][0]["n_reference"] == 50
    assert main(["eval", str(tmp_path / "a.npy"), "--n", "50"]) == 0
    table = capsys.readouterr().out
    assert "fid" in table and "weights_sha256:" in table and "torch_version:" in table


def bad_inputs(tmp_path, images):
    x = images[:, 0].numpy()
    cases = {
        "missing file": tmp_path / "nope.npy",
        "wrong shape": (tmp_path / "rgb.npy", np.repeat(images.numpy(), 3, axis=1)),
        "wrong dtype": (tmp_path / "bool.npy", x > 0),
        "fractional floats": (tmp_path / "unit.npy", x / 255.0),
        "value range": (tmp_path / "signed.npy", x.astype(np.float32) / 127.5 - 1),
        "NaN": (tmp_path / "nan.npy", np.where(x > 200, np.nan, x.astype(np.float32))),
        "one image": (tmp_path / "one.npy", x[:1]),
        "unknown format": (tmp_path / "a.txt", None),
    }
    for name, case in cases.items():
        if isinstance(case, tuple):
            path, array = case
            if array is None:
                path.write_text("hi")
            else:
                np.save(path, array)
            case = path
        yield name, case


def test_each_bad_sample_set_is_one_paragraph_and_exit_2(tmp_path, images, capsys):
    for name, path in bad_inputs(tmp_path, images):
        assert main(["eval", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("gmbench: error: ") and "\n\n" not in err.strip() and "Traceback" not in err, (name, err)


@pytest.mark.parametrize("argv", [["--metrics", "fid,fdi"], ["--extractor", "lenet"], ["--ref", "mnist:valid"],
                                  ["--n", "1000"], ["--dtype", "fp8"], ["--device", "cuda:7"]])
def test_bad_options_are_one_paragraph_and_exit_2(tmp_path, images, capsys, argv):
    np.save(tmp_path / "a.npy", images.numpy())
    if argv[0] == "--device" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    assert main(["eval", str(tmp_path / "a.npy")] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gmbench: error: ") and "Traceback" not in err
