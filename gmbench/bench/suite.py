"""Suites: TOML files naming datasets, seeds, a training budget, models and metric settings.

Datasets are registered names (``datasets = ["mnist"]``) or ``[datasets.NAME]`` tables, which may define NAME
by kind and path (``kind = "npz"`` or ``"image-folder"``, ``path = "..."``; gmbench.datasets.defined).

A suite expands to jobs, one per (model, dataset, seed). Everything that needs no file is checked
when the suite is loaded (names, config keys, types and ranges, metric names, reference split, dtype,
batch size against the training set, repeated seeds or datasets), so a typo fails in a second, not
after an hour of training; bench/preflight.py opens the data and weights files before the first job.
The built-in suites ship in the package (gmbench/suites/*.toml, read through importlib.resources so a wheel
or zip install has them too); see them for the format.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from gmbench.bench.lr_schedule import LR_SCHEDULES
from gmbench.bench.speed import SpeedSettings, check_speed
from gmbench.config import apply_overrides
from gmbench.errors import GmbenchError
from gmbench.registry import DATASETS, MODELS

BUILTIN_SUITES = files("gmbench") / "suites"  # a folder, or a folder inside a zip
_TOP_KEYS = {"description", "datasets", "seeds", "budget", "metrics", "timing", "curve", "speed", "models"}
_MODEL_KEYS = {"budget", "variants", "curve", "speed", "parallel"}
PARALLEL_MODES = ("", "ddp")  # a model's ``parallel``: one process per job, or data-parallel over torchrun's ranks


@dataclass(frozen=True)
class Budget:
    """Training budget of one job: it stops at whichever limit comes first."""

    steps: int | None = None
    seconds: float | None = None
    batch_size: int = 128
    # The learning rate over the steps (bench/lr_schedule.py): "constant", or "cosine" / "linear" decay of every
    # optimiser's lr towards 0 at ``steps``; either after a linear warm-up over the first ``lr_warmup`` steps.
    lr_schedule: str = "constant"
    lr_warmup: int = 0

    def __post_init__(self):
        if self.steps is not None and self.steps < 0 or self.seconds is not None and self.seconds < 0:
            raise ValueError("budget steps and seconds must be >= 0")
        if self.batch_size < 1:
            raise ValueError("budget batch_size must be >= 1")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"budget lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lr_warmup < 0:
            raise ValueError("budget lr_warmup must be >= 0")

    def check_schedule(self, where: str) -> None:
        """A GmbenchError unless the lr schedule knows the run's length: a decay needs ``steps``, and a warm-up fits in them."""
        if self.lr_schedule != "constant" and self.steps is None:
            raise GmbenchError(f"{where}: lr_schedule {self.lr_schedule!r} decays over the budget's steps, and the "
                               "budget has none (a seconds-only budget has no known length); set steps.")
        if self.lr_warmup and self.steps is not None and self.lr_warmup >= self.steps:
            raise GmbenchError(f"{where}: lr_warmup {self.lr_warmup} must be below the budget's steps ({self.steps}).")


@dataclass(frozen=True)
class MetricSettings:
    extractors: tuple[str, ...] = ("mnist-lenet",)
    names: tuple[str, ...] = ("fid",)
    n_samples: int = 2000
    reference: str = "test"  # split of the job's dataset
    dtype: str = "fp32"  # feature-extraction precision
    # extractor name -> the options its factory is built with (``[metrics.options.NAME]``: weights, resize)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def options_of(self, extractor: str) -> dict[str, Any]:
        return self.options.get(extractor, {})

    def __post_init__(self):
        if self.n_samples < 2:
            raise ValueError("metrics n_samples must be >= 2")


@dataclass(frozen=True)
class TimingSettings:
    warmup_steps: int = 10  # training steps excluded from throughput
    block_steps: int = 50  # steps per timed block (one host sync per block)
    sample_batch: int = 256  # batch size of timed sampling
    sample_min_seconds: float = 1.0  # fast samplers time extra batches until this much is measured

    def __post_init__(self):
        if self.warmup_steps < 0 or self.block_steps < 1 or self.sample_batch < 1 or self.sample_min_seconds < 0:
            raise ValueError("timing needs warmup_steps >= 0, block_steps >= 1, sample_batch >= 1, sample_min_seconds >= 0")


@dataclass(frozen=True)
class CurveSettings:
    """Quality during training: a small score every ``every_steps`` steps and/or ``every_seconds`` seconds
    of training (whichever comes first), and once at the end; off when neither interval is set.

    ``targets`` are values of ``metric`` whose first training time is recorded as ``time_to_<metric>@X``.
    """

    every_steps: int | None = None
    every_seconds: float | None = None
    n_samples: int = 500
    extractor: str = "mnist-lenet"
    metric: str = "fid"
    targets: tuple[float, ...] = ()

    def __post_init__(self):
        if self.every_steps is not None and self.every_steps < 1:
            raise ValueError(f"curve every_steps must be >= 1, got {self.every_steps}")
        if self.every_seconds is not None and not self.every_seconds > 0:
            raise ValueError(f"curve every_seconds must be > 0, got {self.every_seconds}")
        if self.n_samples < 2:
            raise ValueError(f"curve n_samples must be >= 2, got {self.n_samples}")
        if not all(math.isfinite(t) for t in self.targets) or len(set(self.targets)) != len(self.targets):
            raise ValueError(f"curve targets must be distinct finite numbers, got {list(self.targets)}")

    @property
    def enabled(self) -> bool:
        return self.every_steps is not None or self.every_seconds is not None


@dataclass(frozen=True)
class Variant:
    """Sampling-only config overrides applied to the same trained weights."""

    name: str
    sampling: dict[str, Any]
    n_samples: int | None = None  # None: the suite's [metrics] n_samples
    metrics: tuple[str, ...] | None = None  # None: the suite's [metrics] names; () times sampling only


@dataclass(frozen=True)
class ModelEntry:
    name: str
    overrides: dict[str, Any]
    budget: Budget
    variants: tuple[Variant, ...] = ()  # extra sampling settings, beside the configured one
    curve: CurveSettings = CurveSettings()  # quality during training (off by default)
    speed: SpeedSettings = SpeedSettings()  # how the steps run (gmbench.bench.speed)
    parallel: str = ""  # "ddp": under torchrun, every rank trains each job of this model together (data_parallel.py)


@dataclass(frozen=True)
class Job:
    suite: str
    model: ModelEntry
    dataset: str
    seed: int

    @property
    def job_id(self) -> str:
        return f"{self.model.name}-{self.dataset}-s{self.seed}"

    def config(self):
        """The job's model config: the model's defaults with the job's overrides."""
        return apply_overrides(MODELS.get(self.model.name).Config(), self.model.overrides, where=f"model {self.model.name}")


@dataclass(frozen=True)
class Suite:
    name: str
    text: str  # the TOML as written, kept in the manifest
    description: str
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    models: tuple[ModelEntry, ...]
    metrics: MetricSettings
    timing: TimingSettings
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)  # --set options applied

    def jobs(self) -> list[Job]:
        return [Job(self.name, m, d, s) for d in self.datasets for m in self.models for s in self.seeds]

    def scored_metrics(self) -> dict[str, set[str]]:
        """Extractor name -> every metric a job scores with it: [metrics], variants' metrics and training curves."""
        out: dict[str, set[str]] = {}
        for entry in self.models:
            for variant in (Variant("", {}),) + entry.variants:  # the configured sampler, then the extras
                for extractor in self.metrics.extractors if variant.metrics != () else ():
                    out.setdefault(extractor, set()).update(variant.metrics or self.metrics.names)
            if entry.curve.enabled and MODELS.get(entry.name).trainable:
                out.setdefault(entry.curve.extractor, set()).add(entry.curve.metric)
        return out


def builtin_suites() -> list[str]:
    """Names of the suites shipped in the package (``gmbench run NAME``)."""
    return sorted(p.name.removesuffix(".toml") for p in BUILTIN_SUITES.iterdir() if p.name.endswith(".toml"))


def resolve_suite_path(name_or_path: str) -> Path | Traversable:
    """A suite file: ``name_or_path`` when it is a .toml path or an existing file, else the built-in suite of that name."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise GmbenchError(f"Suite file {path} does not exist.")
        return path
    builtin = BUILTIN_SUITES / f"{name_or_path}.toml"
    if not builtin.is_file():
        raise GmbenchError(f"Unknown suite {name_or_path!r}: built-in suites are {', '.join(builtin_suites())}; "
                           "or pass a path to a .toml file.")
    return builtin


def suite_name(name_or_path: str) -> str:
    """The suite's name: its file name without the extension (smoke, quick, mine for mine.toml)."""
    return Path(resolve_suite_path(name_or_path).name).stem


def _table(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise GmbenchError(f"{where} must be a table, got {value!r}.")
    return value


def _once_each(values: list, what: str, where: str) -> None:
    """Refuse repeated datasets or seeds: each (model, dataset, seed) job has one id and must run once."""
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise GmbenchError(f"{where}: {what} {values} name {', '.join(map(str, repeated))} more than once, so the same job "
                           f"would run twice under one id; list each of the {what} once.")


def check_job_data(cls, config, budget: Budget, dataset: str, image_shape: tuple[int, int, int], n_train: int | None,
                   where: str) -> None:
    """A model's job on one dataset: its image shape, and where ``n_train`` is known its batch size against the training
    set (None: not before the data is read, and preflight calls again with it); a GmbenchError naming the dataset."""
    if cls.trainable and n_train is not None and budget.batch_size > n_train:
        raise GmbenchError(f"{where}: budget batch_size {budget.batch_size} is larger than the {n_train} training "
                           f"images of {dataset!r}; lower batch_size.")
    try:
        cls.check_image_shape(image_shape)
        cls.check_job(config, budget.batch_size, n_train, image_shape)
    except ValueError as exc:
        raise GmbenchError(f"{where}: {exc} (dataset {dataset!r}, images {'x'.join(map(str, image_shape))}).") from None


def _datasets(raw: Any, where: str) -> list[str]:
    """The suite's dataset names: ``datasets = ["mnist", ...]`` (registered names), or ``[datasets.NAME]`` tables,
    each empty (a registered name) or defining NAME by kind and path (gmbench.datasets.defined)."""
    from gmbench.datasets.defined import define_dataset

    if isinstance(raw, dict) and raw:
        for name, table in raw.items():
            define_dataset(name, _table(table, f"{where} [datasets.{name}]"), where)
        return list(raw)
    if not isinstance(raw, list) or not raw or not all(isinstance(d, str) for d in raw):
        raise GmbenchError(f"{where}: datasets must be a non-empty list of names, or [datasets.NAME] tables "
                           "(kind = \"npz\" or \"image-folder\", path = \"...\").")
    _once_each(raw, "datasets", where)
    return raw


def _variants(cls, config: Any, raw: Any, where: str) -> tuple[Variant, ...]:
    """A model's variants, each checked on ``config`` as the runner sets them: one after the other, in order."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise GmbenchError(f"{where}: variants must be a non-empty list of tables.")
    out, seen = [], set()
    for i, value in enumerate(raw):
        entry = dict(_table(value, f"{where} variant {i}"))
        n_samples = entry.pop("n_samples", None)
        metrics = entry.pop("metrics", None)
        name = str(entry.pop("name", "-".join(f"{k}={v}" for k, v in entry.items())))
        if not name or name in seen:
            raise GmbenchError(f"{where}: variant names must be unique and non-empty ({name!r}).")
        seen.add(name)
        config = cls.sampling_config(config, entry, where=f"{where} variant {name!r}")
        if n_samples is not None and (not isinstance(n_samples, int) or n_samples < 2):
            raise GmbenchError(f"{where} variant {name!r}: n_samples must be an integer >= 2.")
        if metrics is not None and (not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics)):
            raise GmbenchError(f"{where} variant {name!r}: metrics must be a list of metric names (or [] to only time sampling).")
        out.append(Variant(name, entry, n_samples, None if metrics is None else tuple(metrics)))
    return tuple(out)


def _parallel(cls, raw: Any, where: str) -> str:
    """A model's ``parallel`` mode, refused for models that cannot train data-parallel."""
    if raw not in PARALLEL_MODES:
        raise GmbenchError(f"{where}: parallel = {raw!r}; expected \"ddp\" (data-parallel training over torchrun's "
                           "ranks) or no parallel key (each job on one process).")
    if raw and not (cls.trainable and cls.ddp_networks):
        able = [name for name in MODELS.names() if MODELS.get(name).trainable and MODELS.get(name).ddp_networks]
        raise GmbenchError(f"{where}: parallel = \"ddp\", but {cls.__name__} does not support data-parallel training "
                           f"(models that do: {', '.join(able)}); remove the parallel key.")
    return raw


def _extractor_options(raw: dict, metrics: MetricSettings, entries: list[ModelEntry], where: str) -> dict:
    """``[metrics.options.NAME]`` tables: each names an extractor the suite uses and options its factory takes."""
    from gmbench.metrics.features import check_extractor_options

    used = set(metrics.extractors) | {e.curve.extractor for e in entries if e.curve.enabled}
    for name, options in raw.items():
        if name not in used:
            raise GmbenchError(f"{where} [metrics.options.{name}]: the suite uses no extractor {name!r} (it uses "
                               f"{', '.join(sorted(used))}); name one of those, or remove the table.")
        try:
            check_extractor_options(name, _table(options, f"{where} [metrics.options.{name}]"))
        except GmbenchError as exc:
            raise GmbenchError(f"{where} [metrics.options.{name}]: {exc}") from None
    return {name: dict(options) for name, options in raw.items()}


def _curve(default: CurveSettings, raw: Any, set_curve: dict, where: str) -> CurveSettings:
    """A model's curve settings: the suite's [curve], then the model's ``curve = {...}``, then ``--set curve.*``;
    ``curve = false`` keeps the model off, ``--set`` included."""
    if raw is False:
        return CurveSettings()
    if isinstance(raw, dict):
        base = apply_overrides(default, raw, f"{where} curve")
    else:
        raise GmbenchError(f"{where}: curve must be a table such as {{ every_steps = 100 }}, or false to turn it off; got {raw!r}.")
    return apply_overrides(base, set_curve, f"{where} curve") if set_curve else base


def parse_suite(text: str, name: str, set_options: dict[str, dict[str, str]] | None = None,
                seeds: list[int] | None = None, models: list[str] | None = None) -> Suite:
    """Parse and check a suite; ``set_options`` come from ``--set scope.key=value``."""
    where = f"suite {name!r}"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GmbenchError(f"{where} is not valid TOML: {exc}.") from None
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise GmbenchError(f"{where}: unknown top-level keys {', '.join(sorted(unknown))}. Valid: {', '.join(sorted(_TOP_KEYS))}.")
    given = dict(set_options or {})  # all --set options, kept in the Suite (and the manifest)
    set_options = dict(given)
    set_budget = set_options.pop("budget", {})  # --set budget.* wins over every budget in the file
    budget = apply_overrides(Budget(), {**_table(raw.get("budget", {}), f"{where} [budget]"), **set_budget}, f"{where} [budget]")
    metrics_table = dict(_table(raw.get("metrics", {}), f"{where} [metrics]"))
    extractor_options = _table(metrics_table.pop("options", {}), f"{where} [metrics.options]")
    metrics = apply_overrides(MetricSettings(), {**metrics_table, **set_options.pop("metrics", {})}, f"{where} [metrics]")
    timing = apply_overrides(TimingSettings(), {**_table(raw.get("timing", {}), f"{where} [timing]"), **set_options.pop("timing", {})}, f"{where} [timing]")
    set_curve = set_options.pop("curve", {})  # --set curve.* wins over [curve] and every model's curve
    set_speed = set_options.pop("speed", {})  # --set speed.* wins over [speed] and every model's speed
    speed = apply_overrides(SpeedSettings(), _table(raw.get("speed", {}), f"{where} [speed]"), f"{where} [speed]")
    curve = apply_overrides(CurveSettings(), _table(raw.get("curve", {}), f"{where} [curve]"), f"{where} [curve]")

    datasets = _datasets(raw.get("datasets", ["mnist"]), where)
    specs = {d: DATASETS.get(d) for d in datasets}
    for d, spec in specs.items():
        for split, what in ((metrics.reference, f"{where} [metrics]: reference split"), ("train", f"{where}: split")):
            if split not in spec.splits:
                raise GmbenchError(f"{what} {split!r} does not exist for dataset {d!r}; its splits are {', '.join(spec.splits)}.")
    seed_list = seeds if seeds is not None else raw.get("seeds", [0])
    if not isinstance(seed_list, list) or not seed_list or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seed_list):
        raise GmbenchError(f"{where}: seeds must be a non-empty list of non-negative integers, got {seed_list!r}.")
    _once_each(seed_list, "seeds", where)

    model_tables = _table(raw.get("models", {}), f"{where} [models]")
    if not model_tables:
        raise GmbenchError(f"{where} names no models: add a [models.NAME] table (see `gmbench list`).")
    if models:
        for m in models:
            if m not in model_tables:
                raise GmbenchError(f"Model {m!r} is not in {where}; it has {', '.join(model_tables)}.")
        model_tables = {m: model_tables[m] for m in models}
    scoped = {k: v for k, v in set_options.items() if k != "model"}
    for scope in scoped:
        if scope not in model_tables:
            raise GmbenchError(f"--set {scope}.*: {scope!r} is neither a model of {where} ({', '.join(model_tables)}) nor budget, metrics, timing, curve, speed or model.")
    entries = []
    for model, table in model_tables.items():
        cls = MODELS.get(model)
        mwhere = f"{where} [models.{model}]"
        table = dict(_table(table, mwhere))
        model_budget = apply_overrides(budget, {**_table(table.pop("budget", {}), f"{mwhere} budget"), **set_budget},
                                       f"{mwhere} budget")
        if cls.trainable and model_budget.steps is None and model_budget.seconds is None:
            raise GmbenchError(f"{mwhere}: no training budget; set steps or seconds in [budget] or in the model's budget.")
        if cls.trainable:
            model_budget.check_schedule(f"{mwhere} budget")
        raw_variants = table.pop("variants", None)
        parallel = _parallel(cls, table.pop("parallel", ""), mwhere)
        model_curve = _curve(curve, table.pop("curve", {}), set_curve, mwhere)
        model_speed = apply_overrides(speed, {**_table(table.pop("speed", {}), f"{mwhere} speed"), **set_speed},
                                      f"{mwhere} speed")
        check_speed(model_speed, cls, timing.warmup_steps, mwhere)
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        common = {k: v for k, v in set_options.get("model", {}).items() if k in fields}
        overrides = {**table, **common, **scoped.get(model, {})}
        config = apply_overrides(cls.Config(), overrides, where=mwhere)  # check keys and types now
        variants = _variants(cls, config, raw_variants, mwhere)
        for d, spec in specs.items():
            check_job_data(cls, config, model_budget, d, spec.image_shape, spec.count("train"), mwhere)
        entries.append(ModelEntry(model, overrides, model_budget, variants, model_curve, model_speed, parallel))
    generic = set(set_options.get("model", {}))
    for key in generic:
        if not any(key in {f.name for f in dataclasses.fields(MODELS.get(e.name).Config)} for e in entries):
            raise GmbenchError(f"--set model.{key}: no model of {where} has a config key {key!r}.")
    from gmbench.metrics import check_metrics
    from gmbench.metrics.evaluate import parse_dtype
    from gmbench.metrics.features import check_extractor_input

    for extractor in sorted(set(metrics.extractors) | {e.curve.extractor for e in entries if e.curve.enabled}):
        for d, spec in specs.items():
            check_extractor_input(extractor, spec.image_shape, f"{where}: dataset {d!r}")

    try:
        parse_dtype(metrics.dtype)
    except GmbenchError as exc:
        raise GmbenchError(f"{where} [metrics]: {exc}") from None
    for extractor in metrics.extractors:
        check_metrics(extractor, list(metrics.names), metrics.n_samples)
        for entry in entries:
            for v in entry.variants:
                if v.metrics != ():
                    check_metrics(extractor, list(v.metrics or metrics.names), v.n_samples or metrics.n_samples)
    metrics = dataclasses.replace(metrics, options=_extractor_options(extractor_options, metrics, entries, where))
    for entry in entries:
        c = entry.curve
        if c.targets and not c.enabled:
            raise GmbenchError(f"{where} [models.{entry.name}] curve: targets {list(c.targets)} are given but no "
                               "interval; set every_steps or every_seconds in [curve], or drop the targets.")
        if c.enabled and MODELS.get(entry.name).trainable:
            try:
                check_metrics(c.extractor, [c.metric], c.n_samples)
            except GmbenchError as exc:
                raise GmbenchError(f"{where} [models.{entry.name}] curve: {exc}") from None
    return Suite(name, text, str(raw.get("description", "")), tuple(datasets), tuple(seed_list), tuple(entries),
                 metrics, timing, given)


def load_suite(name_or_path: str, **kwargs) -> Suite:
    return parse_suite(resolve_suite_path(name_or_path).read_text(), suite_name(name_or_path), **kwargs)
