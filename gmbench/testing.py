"""The contract kit: the checks gmbench's own contract tests run, for plugin authors to call from theirs.

    from gmbench.testing import check_dataset, check_extractor, check_metric, check_model, check_sampler

    def test_my_model():
        check_model(MyModel)              # built from MyModel.tiny_config(): keep it seconds-small

    def test_my_extractor():
        check_extractor(build_my_extractor)

    def test_my_sampler():
        check_sampler(MySampler(), kind="eps")

    def test_my_metric():
        check_metric("my-metric")         # or the registered function itself

    def test_my_dataset(tmp_path):
        check_dataset(MyDataset(), root=tmp_path)  # a root holding (tiny) files of its format, where it reads any

Each check raises AssertionError naming what broke (never a bare assert, so ``python -O`` checks too).
"""
from __future__ import annotations

import dataclasses
import io
import math
import re
from typing import Callable

import torch

N_DATA, BATCH, STEPS, N_SAMPLES = 64, 16, 3, 6


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _fresh(cls, seed: int):
    torch.manual_seed(seed)  # different initial weights per seed
    return cls(cls.tiny_config())


def check_model(cls) -> None:
    """The model contract (DESIGN.md, "Contracts") on ``cls.tiny_config()`` and 28x28 grayscale data: detached
    finite scalar losses, finite parameters, samples in [-1,1] of the right shape drawn from the generator
    (same seed, same samples), a state_dict round trip that keeps the samples, ``nfe`` following
    ``sample_steps``, and (trainable models) a ``training_state`` that resumes training exactly."""
    from gmbench.models.base import GenerativeModel

    _expect(isinstance(cls, type) and issubclass(cls, GenerativeModel), f"{cls!r} is not a GenerativeModel subclass")
    torch.manual_seed(0)
    data = torch.rand(N_DATA, 1, 28, 28) * 2 - 1  # [N,1,28,28] in [-1,1]
    model = _fresh(cls, 0)
    _expect(isinstance(model.family, str) and bool(model.family), "family must be a non-empty string")
    _expect(dataclasses.is_dataclass(model.config), "config must be a dataclass instance")
    model.fit_data(data)

    if cls.trainable:
        for i in range(STEPS):
            losses = model.train_step(data[i * BATCH:(i + 1) * BATCH])
            _expect(isinstance(losses, dict) and bool(losses), "train_step must return a non-empty dict of losses")
            for name, value in losses.items():
                _expect(isinstance(value, torch.Tensor) and value.dim() == 0, f"loss {name} is not a scalar tensor")
                _expect(not value.requires_grad, f"loss {name} is not detached")
                _expect(bool(torch.isfinite(value)), f"loss {name} = {value}")
        for name, p in model.named_parameters():
            _expect(bool(torch.isfinite(p).all()), f"parameter {name} is not finite after training")

    x = model.sample(N_SAMPLES, generator=_generator(1))
    _expect(x.shape == (N_SAMPLES, 1, 28, 28), f"sample({N_SAMPLES}) gave shape {tuple(x.shape)}")
    _expect(x.dtype.is_floating_point, f"samples must be floating point, got {x.dtype}")
    _expect(bool(torch.isfinite(x).all()) and x.min() >= -1 and x.max() <= 1, "samples must be finite, in [-1,1]")
    _expect(torch.equal(x, model.sample(N_SAMPLES, generator=_generator(1))), "same seed, different samples")
    _expect(not torch.equal(x, model.sample(N_SAMPLES, generator=_generator(2))), "samples ignore the generator")

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = _fresh(cls, 123)
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    _expect(torch.equal(x, loaded.sample(N_SAMPLES, generator=_generator(1))), "state_dict round trip changed samples")

    _expect(isinstance(model.nfe, int) and model.nfe >= 1, f"nfe must be an int >= 1, got {model.nfe!r}")
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    for field in getattr(cls.Config, "sampling_fields", ()):  # sampling settings are read at call time
        _expect(field in fields, f"sampling field {field!r} is not a Config field")
    if "sample_steps" in getattr(cls.Config, "sampling_fields", ()):
        before = model.nfe
        model.set_sampling(sample_steps=model.config.sample_steps + 1)
        _expect(model.nfe > before, "nfe must follow sample_steps")
        _expect(model.sample(2, generator=_generator(1)).shape == (2, 1, 28, 28), "sampling after set_sampling")
    if cls.trainable:
        _check_training_state(cls, data)


def _train(model, data: torch.Tensor, seed: int) -> None:
    torch.manual_seed(seed)  # the global stream train_step may draw from (GAN noise, reparameterisation)
    for i in range(STEPS):
        model.train_step(data[i * BATCH:(i + 1) * BATCH])


def _check_training_state(cls, data: torch.Tensor) -> None:
    """A model restored from ``training_state`` (through torch.save and torch.load(weights_only=True)) into a
    fresh one trains on exactly as the original: networks, optimizers, EMA and host counters all round-trip."""
    model = _fresh(cls, 0)
    model.fit_data(data)
    _train(model, data, seed=1)
    buffer = io.BytesIO()
    torch.save(model.training_state(), buffer)
    buffer.seek(0)
    resumed = _fresh(cls, 123)
    resumed.fit_data(data)
    resumed.load_training_state(torch.load(buffer, weights_only=True))
    for m in (model, resumed):
        _train(m, data.flip(0), seed=2)
    expected, got = model.state_dict(), resumed.state_dict()
    for name, value in expected.items():
        _expect(torch.equal(value, got[name]), f"{name} differs after training on from a restored training state")


def check_extractor(factory: Callable, image_shape: tuple[int, int, int] = (1, 28, 28), **options) -> None:
    """The extractor contract: ``factory(device="cpu", **options)`` builds a FeatureExtractor with a name, a
    feature width and a 64-hex-digit weights sha256, whose ``forward`` maps uint8 [N,*image_shape] to finite
    float features [N,feature_dim] and logits [N,num_classes] (or None without a head), the same for the same
    images and per image (a batch's rows equal the images' features computed alone, to float tolerance)."""
    from gmbench.metrics.features import FeatureExtractor

    extractor = factory(device="cpu", **options)
    _expect(isinstance(extractor, FeatureExtractor), f"the factory built {type(extractor).__name__}, not a FeatureExtractor")
    _expect(isinstance(extractor.name, str) and bool(extractor.name), "name must be a non-empty string")
    _expect(isinstance(extractor.feature_dim, int) and extractor.feature_dim >= 1, "feature_dim must be an int >= 1")
    _expect(bool(re.fullmatch(r"[0-9a-f]{64}", str(extractor.weights_sha256))), "weights_sha256 must be 64 hex digits")
    _expect(isinstance(extractor.preprocessing_version, str), "preprocessing_version must be a string")
    images = torch.randint(0, 256, (4, *image_shape), dtype=torch.uint8, generator=_generator(0))  # [4,C,H,W]
    with torch.no_grad():
        features, logits = extractor.eval()(images)
        again, _ = extractor(images)
        alone, _ = extractor(images[:1])
    _expect(features.shape == (4, extractor.feature_dim), f"features have shape {tuple(features.shape)}, "
            f"expected (4, {extractor.feature_dim})")
    _expect(features.dtype.is_floating_point and bool(torch.isfinite(features).all()), "features must be finite floats")
    _expect(torch.equal(features, again), "the same images gave different features")
    _expect(torch.allclose(alone[0], features[0], rtol=1e-4, atol=1e-5), "an image's features depend on its batch")
    if extractor.num_classes is None:
        _expect(logits is None, "an extractor without a head (num_classes None) must return logits None")
    else:
        _expect(logits is not None and logits.shape == (4, extractor.num_classes),
                f"logits must have shape (4, {extractor.num_classes})")


def check_sampler(sampler, kind: str | None = None, steps: int = 3, **options) -> None:
    """The sampler contract (DESIGN.md, "Contracts") on a tiny random denoiser of its kind (``kind``, when given,
    must be the sampler's): ``steps`` steps from noise x [2,2,6,6] give finite samples of x's shape and dtype, the
    same for the same generator; ``nfe(steps, **options)`` is the number of denoiser calls it makes, each on
    [B,C,H,W] and t [B]; x is left as it was. ``sampler``: a Sampler instance or a registered name."""
    from gmbench.registry import SAMPLERS
    from gmbench.samplers.base import EpsDenoiser, VelocityField, is_sampler

    sampler = SAMPLERS.get(sampler) if isinstance(sampler, str) else sampler
    _expect(is_sampler(sampler), f"{sampler!r} is not a Sampler instance of kind 'eps' or 'velocity'")
    _expect(kind is None or sampler.kind == kind, f"the sampler's kind is {sampler.kind!r}, expected {kind!r}")
    options = sampler.options(options)
    weight = torch.randn(2, 2, generator=_generator(0)) / 2  # [C,C]
    calls = []

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        _expect(t.shape == (x.shape[0],), f"the denoiser got t of shape {tuple(t.shape)} for x {tuple(x.shape)}")
        calls.append(1)
        return torch.tanh(torch.einsum("oc,bchw->bohw", weight, x) + t.view(-1, 1, 1, 1) / 10)  # [B,C,H,W]

    alpha_bars = torch.cumprod(1 - torch.linspace(0.01, 0.3, 20), 0)  # [20], T = 20
    denoiser = EpsDenoiser(fn, alpha_bars) if sampler.kind == "eps" else VelocityField(fn)
    x = torch.randn(2, 2, 6, 6, generator=_generator(1))  # [B,C,H,W]
    before = x.clone()
    out = sampler.sample(denoiser, x, steps, _generator(2), **options)
    _expect(isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == x.dtype,
            f"samples must be a {x.dtype} tensor of x's shape {tuple(x.shape)}, got {out!r:.80}")
    _expect(bool(torch.isfinite(out).all()), "samples must be finite")
    _expect(torch.equal(x, before), "sample modified its input x")
    nfe = sampler.nfe(steps, **options)
    _expect(len(calls) == nfe, f"nfe({steps}) = {nfe}, but sample made {len(calls)} denoiser calls")
    _expect(torch.equal(out, sampler.sample(denoiser, x, steps, _generator(2), **options)),
            "same generator, different samples")


def check_metric(metric: Callable | str, *, seed: int = 0, dataset: str = "mnist", data_root: str | None = None) -> None:
    """The metric contract on the registered metric ``metric`` (a name, or a function registered under one or more
    names): on random float64 features [n,8] and, only where it needs them, logits [n,K] (``dataset``'s classes)
    at its min_samples and above, it returns finite numbers for its name and its declared extra outputs, the same
    for the same inputs and seed, and leaves its inputs as they were. ``ctx.samples`` are random images of
    ``dataset``'s shape; ``ctx.dataset`` is ``dataset`` where the metric needs one (its test split is read)."""
    from gmbench.metrics.context import MetricContext
    from gmbench.registry import DATASETS, METRICS

    specs = [METRICS.get(metric)] if isinstance(metric, str) else [m for m in METRICS.in_order() if m.fn is metric]
    _expect(bool(specs), f"{metric!r} is not a registered metric; register it with gmbench.register_metric first")
    data = DATASETS.get(dataset)
    for spec in specs:
        low = max(spec.min_samples, 2)  # Gaussian statistics need two images
        for n_fake, n_real in ((low, low), (2 * low + 3, low + 1)):
            generator = _generator(seed)
            fake, real = (_random_stats(n, data.num_classes, "logits" in spec.needs, generator)
                          for n in (n_fake, n_real))
            samples = torch.randint(0, 256, (n_fake, *data.image_shape), dtype=torch.uint8,
                                    generator=generator)  # [n,C,H,W]
            ctx = MetricContext(seed, samples, dataset if "dataset" in spec.needs else None, data_root)
            inputs = [t.clone() for t in _tensors(fake, real, ctx)]
            where = f"metric {spec.name!r} on {n_fake} vs {n_real} samples"
            first = _outputs(spec, fake, real, ctx, where)
            for out, value in first.items():
                _expect(math.isfinite(value), f"{where}: {out} = {value} is not finite")
            after = _tensors(fake, real, ctx)
            _expect(all(torch.equal(a, b) for a, b in zip(inputs, after)), f"{where}: it changed its inputs in place")
            again = _outputs(spec, fake, real, ctx, where)
            _expect(first == again, f"{where}: the same inputs and seed gave {first}, then {again}")


def _outputs(spec, fake, real, ctx, where: str) -> dict[str, float]:
    """Output id -> value of one call of the metric's function; what it raises becomes an AssertionError."""
    from gmbench.metrics.evaluate import output_value

    try:
        result = spec.fn(fake, real, ctx)
        return {out: output_value(spec, result, out) for out in spec.outputs}
    except Exception as exc:  # a plugin's own bug: name it, and what it was given
        raise AssertionError(f"{where} (needs {sorted(spec.needs)}; logits are None without 'logits'): "
                             f"{type(exc).__name__}: {exc}") from exc


def _random_stats(n: int, classes: int, logits: bool, generator: torch.Generator):
    """FeatureStats of random float64 features [n,8] and logits [n,classes] (None without ``logits``)."""
    from gmbench.metrics.stats_cache import FeatureStats

    features = torch.randn(n, 8, generator=generator, dtype=torch.float64)  # [n,8]
    scores = torch.randn(n, classes, generator=generator, dtype=torch.float64) * 3 if logits else None  # [n,K]
    return FeatureStats.of(features, scores)


def _tensors(fake, real, ctx) -> list[torch.Tensor]:
    """Every tensor a metric function receives."""
    return [t for stats in (fake, real) for t in (stats.features, stats.logits, stats.mu, stats.sigma)
            if t is not None] + [ctx.samples]


def check_dataset(dataset, root=".") -> None:
    """The dataset contract: registrable (a Dataset with image_shape, num_classes and splits), and every split's
    ``load(split, root)`` returns uint8 images [N,*image_shape] and int64 labels [N] below num_classes, the same
    twice (the harness reads a split in every process and caches it)."""
    from pathlib import Path

    from gmbench.data import contract_problems
    from gmbench.dataset_spec import dataset_problem

    problem = dataset_problem(dataset)
    _expect(not problem, f"not registrable as a dataset: expected {problem}")
    for split in dataset.splits:
        images, labels = dataset.load(split, Path(root))
        problems = contract_problems(dataset, images, labels)
        _expect(not problems, f"split {split!r}: {'; '.join(problems)}")
        again = dataset.load(split, Path(root))
        _expect(torch.equal(images, again[0]) and torch.equal(labels, again[1]), f"split {split!r} loads differently twice")
