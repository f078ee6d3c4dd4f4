"""gmbench.testing, the contract kit plugin authors call: it passes the built-in extractors and fails broken
models and extractors with a message naming what broke."""
import pytest
import torch

from gmbench.metrics.inception import build_inception_extractor
from gmbench.metrics.lenet import build_mnist_lenet
from gmbench.models.gan import GANMLP
from gmbench.registry import BUILTIN, SAMPLERS
from gmbench.samplers.flow import Euler
from gmbench.testing import check_extractor, check_model, check_sampler
from tests.conftest import inception_weights_path


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
