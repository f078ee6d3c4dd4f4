"""mnist-lenet: shipped weights verified and accurate; known answers of track B (IS of real data,
FID growing with noise as in Heusel et al. 2017, Fig. 2); FID independent of batch size."""
import json
import shutil

import pytest
import torch

from gmbench.data import load_dataset, to_float, to_uint8
from gmbench.errors import GmbenchError
from gmbench.metrics import build_extractor
from gmbench.metrics.features import extract
from gmbench.metrics.fid import fid_from_features
from gmbench.metrics.inception_score import inception_score
from gmbench.metrics.lenet import SHIPPED_WEIGHTS, build_mnist_lenet, file_sha256, weights_manifest
from tests.conftest import requires_mnist

pytestmark = requires_mnist  # every test here reads MNIST


@pytest.fixture(scope="module")
def lenet():
    return build_extractor("mnist-lenet")


@pytest.fixture(scope="module")
def test_set(lenet):
    images, labels = load_dataset("mnist", "test")
    features, logits = extract(lenet, images)  # [10000,128], [10000,10]
    return images, labels, features, logits


def test_shipped_weights_reach_99_3_percent_and_match_their_manifest(lenet, test_set):
    _, labels, _, logits = test_set
    accuracy = (logits.argmax(1) == labels).double().mean().item()
    manifest = json.loads(weights_manifest(SHIPPED_WEIGHTS).read_text())
    assert accuracy >= 0.993
    assert accuracy == pytest.approx(manifest["test_accuracy"], abs=1e-4)
    assert lenet.weights_sha256 == manifest["sha256"] == file_sha256(SHIPPED_WEIGHTS)
    assert logits.shape == (10000, 10) and test_set[2].shape == (10000, 128)


def test_inception_score_of_real_test_set_is_at_least_9_7(test_set):
    mean, _ = inception_score(test_set[3], splits=10)
    assert mean >= 9.7  # published 9.88 with a TF MNIST classifier


def test_fid_grows_monotonically_with_gaussian_noise(lenet, test_set):
    images, _, features, _ = test_set
    reference = features[5000:]  # [5000,128]
    clean = to_float(images[:1000])  # [1000,1,28,28]
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(clean.shape, generator=generator)
    fids = [fid_from_features(extract(lenet, to_uint8(clean + s * noise))[0], reference)
            for s in (0.0, 0.1, 0.25, 0.5, 1.0)]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids


def test_fid_is_independent_of_batch_size(lenet, test_set):
    images, _, features, _ = test_set
    fid_500 = fid_from_features(extract(lenet, images[:1000], batch_size=500)[0], features[5000:])
    fid_37 = fid_from_features(extract(lenet, images[:1000], batch_size=37)[0], features[5000:])
    assert fid_37 == pytest.approx(fid_500, rel=1e-9)


def test_weights_whose_sha256_differs_from_the_manifest_are_refused(tmp_path):
    weights = tmp_path / "lenet.pt"
    shutil.copy(SHIPPED_WEIGHTS, weights)
    manifest = json.loads(weights_manifest(SHIPPED_WEIGHTS).read_text())
    weights_manifest(weights).write_text(json.dumps(manifest))
    assert build_mnist_lenet(weights=weights).weights_sha256 == manifest["sha256"]
    with open(weights, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(GmbenchError, match="sha256"):
        build_mnist_lenet(weights=weights)


def test_unknown_extractor_option_is_a_clear_error():
    with pytest.raises(GmbenchError, match="options are: weights"):
        build_extractor("mnist-lenet", resize="tf1")
