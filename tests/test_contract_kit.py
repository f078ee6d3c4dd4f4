"""gmbench.testing, the contract kit plugin authors call: it passes the built-in extractors, samplers, metrics and
datasets and fails broken models, extractors, samplers and metrics with a message naming what broke."""
import math

import pytest
import torch

from gmbench.data import data_root, load_dataset
from gmbench.errors import GmbenchError
from gmbench.metrics.context import MetricContext
from gmbench.metrics.inception import build_inception_extractor
from gmbench.metrics.lenet import build_mnist_lenet
from gmbench.models.gan import GANMLP
from gmbench.registry import BUILTIN, DATASETS, METRICS, SAMPLERS, register_metric
from gmbench.samplers.flow import Euler
from gmbench.testing import check_dataset, check_extractor, check_metric, check_model, check_sampler
from tests.conftest import inception_weights_path, requires_mnist


def test_the_builtin_extractors_keep_the_contract():
    check_extractor(build_mnist_lenet)
    weights = inception_weights_path()
    if weights.is_file():  # ~6 GFLOP per image: 9 images
        check_extractor(build_inception_extractor, weights=str(weights))


class IgnoresTheGenerator(GANMLP):
    @torch.no_grad()
    def sample(self, n, generator=None):
        return super().sample(n)  # draws from the global stream: seeds do not reproduce samples


class LeaksTheGraph(GANMLP):
    def train_step(self, x):
        losses = super().train_step(x)
        return {**losses, "penalty": self.generator(self.randn(2, self.config.z_dim)).mean()}  # not detached


@pytest.mark.parametrize("cls, message", [(IgnoresTheGenerator, "same seed, different samples"),
                                          (LeaksTheGraph, "loss penalty is not detached")])
def test_check_model_names_what_a_broken_model_breaks(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_model(cls)


def test_check_extractor_names_what_a_broken_extractor_breaks():
    def wrong_width(device="cpu"):
        extractor = build_mnist_lenet(device)
        extractor.feature_dim = 64  # the network gives 128
        return extractor

    with pytest.raises(AssertionError, match=r"features have shape \(4, 128\), expected \(4, 64\)"):
        check_extractor(wrong_width)


@pytest.mark.parametrize("name", [n for n in SAMPLERS.names() if SAMPLERS.source(n) == BUILTIN])
def test_the_builtin_samplers_keep_the_contract(name):
    check_sampler(name, kind=SAMPLERS.get(name).kind)


class CountsWrong(Euler):
    def nfe(self, steps, **options):
        return steps + 1


class ChangesItsInput(Euler):
    def sample(self, denoiser, x, steps, generator=None):
        return super().sample(denoiser, x.add_(1), steps)


class DrawsFromTheGlobalStream(Euler):
    def sample(self, denoiser, x, steps, generator=None):
        return super().sample(denoiser, x + torch.randn(x.shape), steps)


@pytest.mark.parametrize("sampler, kind, message", [
    (CountsWrong(), None, r"nfe\(3\) = 4, but sample made 3 denoiser calls"),
    (ChangesItsInput(), None, "sample modified its input x"),
    (DrawsFromTheGlobalStream(), None, "same generator, different samples"),
    (Euler(), "eps", "the sampler's kind is 'velocity', expected 'eps'")])
def test_check_sampler_names_what_a_broken_sampler_breaks(sampler, kind, message):
    with pytest.raises(AssertionError, match=message):
        check_sampler(sampler, kind=kind)


BUILTIN_METRICS = [n for n in METRICS.names() if METRICS.source(n) == BUILTIN]


@pytest.mark.parametrize("name", [pytest.param(n, marks=requires_mnist) if "dataset" in METRICS.get(n).needs else n
                                  for n in BUILTIN_METRICS])  # a metric needing the dataset reads MNIST's test split
def test_the_builtin_metrics_keep_the_contract(name, monkeypatch):
    if "dataset" in METRICS.get(name).needs:  # CAS: testing on all 10k test images takes 30 s
        images, labels = load_dataset("mnist", "test")
        monkeypatch.setattr(MetricContext, "test_split", lambda self: (images[:500], labels[:500]))
    check_metric(name)


def _unseeded(fake, real, ctx):
    return torch.rand((), dtype=torch.float64).item()  # the global stream, not ctx.seed


def _in_place(fake, real, ctx):
    return fake.features.mul_(2).mean().item()


def _no_spread(fake, real, ctx):
    return {"test-broken": 1.0}


def _infinite(fake, real, ctx):
    return (fake.mu - real.mu).norm().item() * math.inf


def _undeclared_logits(fake, real, ctx):
    return fake.logits.mean().item()  # registered with needs "features" only


def _one_sample_too_few(fake, real, ctx):
    if len(fake.features) < 6:
        raise GmbenchError("needs 6 samples")
    return 0.0


@pytest.mark.parametrize("fn, message", [
    (_unseeded, "the same inputs and seed gave"), (_in_place, "it changed its inputs in place"),
    (_no_spread, "lacks a number for 'test-broken_std'"), (_infinite, "test-broken = inf is not finite"),
    (_one_sample_too_few, r"on 5 vs 5 samples .*GmbenchError: needs 6 samples"),
    (_undeclared_logits, "logits are None without 'logits'.*AttributeError")])
def test_check_metric_names_what_a_broken_metric_breaks(fn, message):
    spread = {"test-broken_std": False} if fn is _no_spread else {}
    register_metric("test-broken", fn, higher_is_better=False, min_samples=5, extra_outputs=spread)
    try:
        with pytest.raises(AssertionError, match=message):
            check_metric(fn)
    finally:
        METRICS.unregister("test-broken")


def test_check_metric_refuses_an_unregistered_function():
    with pytest.raises(AssertionError, match="not a registered metric"):
        check_metric(_infinite)


@pytest.mark.parametrize("name", [n for n in DATASETS.names() if DATASETS.source(n) == BUILTIN])
def test_the_builtin_datasets_keep_the_contract(name):
    root = data_root()
    try:
        load_dataset(name, "test", root)
    except GmbenchError as exc:  # files not here (MNIST without ../shared, CIFAR-10 anywhere without its batches)
        pytest.skip(f"{name}: {exc}")
    check_dataset(DATASETS.get(name), root=root)
