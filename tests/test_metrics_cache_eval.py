"""Reference-statistics cache (reuse, rebuild on any key change) and the evaluate() API."""
import math
import os

import pytest
import torch

from gmbench.data import load_dataset
from gmbench.errors import GmbenchError
from gmbench.io import _host
from gmbench.metrics.classifier_scores import classifier_accuracy_score
from gmbench.metrics import build_extractor, check_metrics, evaluate
from gmbench.metrics.features import FeatureExtractor, extract
from gmbench.metrics.fid import fid_from_features
from gmbench.metrics.prdc import density_coverage, precision_recall
from gmbench.metrics.stats_cache import reference_stats
from gmbench.registry import EXTRACTORS, METRICS
from tests.conftest import requires_mnist
from tests.test_io import _dead_pid

pytestmark = requires_mnist  # every test here reads MNIST


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GMBENCH_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def lenet():
    return build_extractor("mnist-lenet")


def test_cache_is_reused_and_rebuilt_when_a_key_part_changes(cache, lenet, monkeypatch):
    first, path, reused = reference_stats(lenet, "mnist", "test", 300)
    assert not reused and path.parent == cache and path.is_file()
    again, path_again, reused = reference_stats(lenet, "mnist", "test", 300)
    assert reused and path_again == path and torch.equal(again.features, first.features)
    assert torch.allclose(first.mu, first.features.mean(0), rtol=0, atol=1e-12)

    assert not reference_stats(lenet, "mnist", "test", 200)[2]  # N
    assert not reference_stats(lenet, "mnist", "train", 300)[2]  # split
    assert not reference_stats(lenet, "mnist", "test", 300, dtype=torch.bfloat16)[2]  # dtype
    monkeypatch.setattr(lenet, "weights_sha256", "0" * 64)
    assert not reference_stats(lenet, "mnist", "test", 300)[2]  # weights
    monkeypatch.undo()
    monkeypatch.setenv("GMBENCH_CACHE", str(cache))
    monkeypatch.setattr(lenet, "preprocessing_version", "changed", raising=False)
    assert not reference_stats(lenet, "mnist", "test", 300)[2]  # preprocessing
    monkeypatch.undo()
    monkeypatch.setenv("GMBENCH_CACHE", str(cache))
    assert reference_stats(lenet, "mnist", "test", 300)[2]  # the original file is still good
    path.write_bytes(b"damaged")
    rebuilt, _, reused = reference_stats(lenet, "mnist", "test", 300)
    assert not reused and torch.equal(rebuilt.features, first.features)
    assert len(list(cache.glob("*.pt"))) == 6 and not list(cache.glob(".*.tmp"))


def test_writing_the_cache_removes_only_dead_writers_temporaries(cache, lenet):
    stale, live = (cache / f".x.pt.gmbench-{_host()}-{pid}-abc123.tmp" for pid in (_dead_pid(), os.getppid()))
    user = cache / ".notes.tmp"
    for path in (stale, live, user):
        path.write_bytes(b"partial")
    reference_stats(lenet, "mnist", "test", 20)
    assert not stale.exists() and live.exists() and user.exists()


def test_evaluate_scores_every_metric_with_provenance(cache, lenet):
    samples = load_dataset("mnist", "train")[0][:300]
    names = [m.name for m in METRICS.in_order() if m.name != "classifier_accuracy_score"]
    scores = evaluate(samples, reference="mnist:test:400", metrics=names)
    assert [s.metric for s in scores] == ["fid", "kid", "kid_std", "is", "is_std", "precision", "recall",
                                          "density", "coverage", "class_entropy"]
    assert all(s.extractor == "mnist-lenet" and s.extractor_sha256 == lenet.weights_sha256 for s in scores)
    assert all(s.n_samples == 300 and s.n_reference == 400 and math.isfinite(s.value) for s in scores)
    values = {s.metric: s.value for s in scores}
    real, fake = extract(lenet, load_dataset("mnist", "test")[0][:400])[0], extract(lenet, samples)[0]
    assert values["fid"] == pytest.approx(fid_from_features(fake, real), rel=1e-12)
    assert 8.0 < values["is"] < 10  # 10 splits of 30: small splits bias IS low
    # the protocol's k: 3 for precision/recall, 5 for density/coverage
    assert (values["precision"], values["recall"]) == pytest.approx(precision_recall(real, fake, k=3), abs=1e-12)
    assert (values["density"], values["coverage"]) == pytest.approx(density_coverage(real, fake, k=5), abs=1e-12)
    # the predicted-label histogram: LeNet misreads one of these 300 digits, so the entropy is that of the
    # true labels (counts 34 39 28 34 32 23 29 29 21 31, 2.2882 nats) within 0.002
    labels = torch.bincount(load_dataset("mnist", "train")[1][:300], minlength=10).double() / 300
    assert values["class_entropy"] == pytest.approx(-(labels * labels.log()).sum().item(), abs=0.002)
    assert len(list(cache.glob("*.pt"))) == 1
    by_tensor = evaluate(samples, reference=load_dataset("mnist", "test")[0][:400], metrics=["fid"])
    assert by_tensor[0].value == pytest.approx(values["fid"], rel=1e-12)


def test_classifier_accuracy_score_is_high_for_real_images_and_chance_for_random_labels(lenet):
    samples = load_dataset("mnist", "train")[0][:1000]
    test_images, test_labels = (t[:2000] for t in load_dataset("mnist", "test"))
    logits = extract(lenet, samples)[1]  # [1000,10]: the reference classifier labels the samples
    real = classifier_accuracy_score(samples, logits, test_images, test_labels, epochs=3)
    shuffled = classifier_accuracy_score(samples, logits[torch.randperm(1000, generator=torch.Generator().manual_seed(0))],
                                         test_images, test_labels, epochs=3)
    assert real > 0.7 and shuffled < 0.3, (real, shuffled)  # measured: 0.796 and 0.169


class HeadlessExtractor(FeatureExtractor):
    name = "test-headless"
    feature_dim = 4

    def __init__(self):
        super().__init__("none", num_classes=None)
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, images):
        return images.float().flatten(1)[:, :4] * self.scale, None


def test_metrics_that_need_logits_refuse_an_extractor_without_a_head(cache):
    EXTRACTORS.register("test-headless", lambda device="cpu": HeadlessExtractor().to(device))
    try:
        samples = load_dataset("mnist", "test")[0][:50]
        with pytest.raises(GmbenchError, match="need classifier logits"):
            evaluate(samples, reference=samples, extractor="test-headless", metrics=["fid", "is"])
    finally:
        EXTRACTORS.unregister("test-headless")


def test_bad_names_are_clear_errors():
    with pytest.raises(GmbenchError, match="valid metrics: fid, kid"):
        check_metrics("mnist-lenet", ["fid", "fdi"])
    with pytest.raises(GmbenchError, match="Known extractors"):
        check_metrics("inception", ["fid"])
    samples = load_dataset("mnist", "test")[0][:10]
    with pytest.raises(GmbenchError, match="dataset:split"):
        evaluate(samples, reference="mnist")
    with pytest.raises(GmbenchError, match="dtype"):
        evaluate(samples, dtype="fp8")
