"""Named registries of models, samplers, datasets, feature extractors and metrics, plus third-party plugins.

Built-ins register themselves when their modules are imported; third-party packages add an
entry point in the group ``gmbench.plugins`` naming a callable that gmbench calls once
(with no arguments) to register its things:

    [project.entry-points."gmbench.plugins"]
    my_models = "my_pkg.gmbench_plugin:register"
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import sys
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Mapping, TypeVar

from gmbench.dataset_spec import dataset_problem
from gmbench.errors import GmbenchError

T = TypeVar("T")
PLUGIN_GROUP = "gmbench.plugins"
BUILTIN = "built-in"
_loading: list[str] = []  # the distribution whose plugin entry point is being loaded, if any
_BUILTIN_MODULES = ("gmbench.datasets.builtin", "gmbench.models.gan", "gmbench.models.diffusion", "gmbench.models.reference",
                    "gmbench.models.vae", "gmbench.samplers.ddpm", "gmbench.samplers.flow", "gmbench.metrics",
                    "gmbench.metrics.builtin")


class Registry(Generic[T]):
    """A name -> object map that validates names and kinds and explains unknown names.

    ``check(obj)`` is True for a valid object, else False or what was expected instead (a more precise ``expected``).
    """

    def __init__(self, kind: str, check: Callable[[Any], bool | str], expected: str):
        self.kind = kind
        self._check = check
        self._expected = expected
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}

    def register(self, name: str, obj: T) -> T:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name) or "/" in name or "\\" in name:
            raise GmbenchError(
                f"Cannot register {self.kind} {name!r}: a name must be a non-empty string "
                "without whitespace or path separators."
            )
        if name in self._items:
            raise GmbenchError(f"Cannot register {self.kind} {name!r}: that name is already taken by {self._items[name]!r}.")
        verdict = self._check(obj)
        if verdict is not True:
            raise GmbenchError(f"Cannot register {self.kind} {name!r}: expected {verdict or self._expected}, got {obj!r}.")
        self._items[name] = obj
        self._sources[name] = _registering_source()
        return obj

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)
        self._sources.pop(name, None)

    def source(self, name: str) -> str:
        """Where ``name`` came from: "built-in", a plugin's distribution name, or the package that registered it."""
        self.get(name)
        return self._sources[name]

    def get(self, name: str) -> T:
        ensure_loaded()
        if name not in self._items:
            known = sorted(self._items)
            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise GmbenchError(f"Unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(known) or '(none)'}.")
        return self._items[name]

    def names(self) -> list[str]:
        ensure_loaded()
        return sorted(self._items)

    def in_order(self) -> list[T]:
        """The registered objects in registration order."""
        ensure_loaded()
        return list(self._items.values())

    def __contains__(self, name: str) -> bool:
        ensure_loaded()
        return name in self._items


def _registering_source() -> str:
    """Who is registering: the plugin distribution being loaded, else gmbench itself ("built-in") or the
    top-level package of the code that called ``register``."""
    if _loading:
        return _loading[-1]
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    package = (frame.f_globals.get("__name__") or "?").partition(".")[0] if frame else "?"
    return BUILTIN if package == "gmbench" else package


def _is_model_class(obj: Any) -> bool:
    """A GenerativeModel subclass whose ``Config`` is a dataclass (suites and --set read its fields)."""
    from gmbench.models.base import GenerativeModel

    config = getattr(obj, "Config", None)
    return (isinstance(obj, type) and issubclass(obj, GenerativeModel) and isinstance(config, type)
            and dataclasses.is_dataclass(config))


def _is_sampler(obj: Any) -> bool:
    from gmbench.samplers.base import is_sampler

    return is_sampler(obj)


def _is_dataset(obj: Any) -> bool | str:
    return dataset_problem(obj) or True


MODELS: Registry[type] = Registry("model", _is_model_class, "a subclass of gmbench.models.base.GenerativeModel "
                                  "whose Config is a dataclass (@dataclass(frozen=True) with defaults)")
SAMPLERS: Registry[Any] = Registry("sampler", _is_sampler, "an instance of a gmbench.samplers.base.Sampler subclass "
                                   "whose kind is \"eps\" or \"velocity\"")
DATASETS: Registry[Any] = Registry("dataset", _is_dataset, "a gmbench.dataset_spec.Dataset")
EXTRACTORS: Registry[Callable] = Registry("extractor", callable, "a callable that builds a FeatureExtractor")

# What a metric can need: the features [N,D] and/or the logits [N,K] of both image sets, and "dataset": a dataset
# reference (ctx.dataset, its test split through ctx.test_split()) whose classes the extractor's logits predict.
METRIC_NEEDS = ("features", "logits", "dataset")


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``fn(fake, real, ctx)`` of two FeatureStats (float64) and a MetricContext returns
    its value (a float), or a dict holding its value and ``extra_outputs`` under their names. One ``fn``
    registered under several names runs once per evaluation (precision and recall share their neighbours)."""

    name: str
    fn: Callable
    needs: frozenset[str]
    higher_is_better: bool
    unit: str = ""
    min_samples: int = 2  # per side
    extra_outputs: Mapping[str, bool] = dataclasses.field(default_factory=dict)  # spreads: name -> higher_is_better

    @property
    def outputs(self) -> dict[str, bool]:
        """Every id this metric scores, its own first -> higher_is_better."""
        return {self.name: self.higher_is_better, **self.extra_outputs}


def _metric_problem(obj: Any) -> str:
    """What is wrong with ``obj`` as a Metric ("" when nothing is)."""
    if not isinstance(obj, Metric):
        return f"a gmbench.registry.Metric, got {obj!r}"
    if not callable(obj.fn):
        return f"fn must be callable (fake, real, ctx) -> float | dict, got {obj.fn!r}"
    needs = obj.needs
    if not isinstance(needs, frozenset) or not needs or not needs <= set(METRIC_NEEDS) or needs == {"dataset"}:
        given = sorted(map(str, needs)) if isinstance(needs, frozenset) else needs
        return f"needs must name features and/or logits (and dataset where wanted) of {METRIC_NEEDS}, got {given!r}"
    if not isinstance(obj.higher_is_better, bool) or not isinstance(obj.unit, str):
        return "higher_is_better must be True or False and unit a string"
    if isinstance(obj.min_samples, bool) or not isinstance(obj.min_samples, int) or obj.min_samples < 1:
        return f"min_samples must be an int >= 1, got {obj.min_samples!r}"
    if not all(isinstance(k, str) and k and isinstance(v, bool) for k, v in obj.extra_outputs.items()):
        return f"extra_outputs must map output names to higher_is_better (True/False), got {dict(obj.extra_outputs)!r}"
    if obj.name in obj.extra_outputs:
        return f"an extra output cannot repeat the metric's name {obj.name!r}"
    return ""


METRICS: Registry[Metric] = Registry("metric", lambda obj: not _metric_problem(obj),
                                     "a gmbench.registry.Metric (register it with register_metric)")


def _decorator_or_call(registry: Registry, name: str, obj: Any):
    if obj is None:
        return lambda o: registry.register(name, o)
    return registry.register(name, obj)


def register_model(name: str, cls: type | None = None):
    """Register a GenerativeModel subclass; usable as ``@register_model("name")``."""
    return _decorator_or_call(MODELS, name, cls)


def register_sampler(name: str, sampler: Any | None = None):
    """Register a gmbench.samplers.base.Sampler: an instance, or a subclass (registered as an instance built
    without arguments); usable as ``@register_sampler("name")`` on the class. Returns what it was given."""
    from gmbench.samplers.base import Sampler

    def register(obj: Any) -> Any:
        SAMPLERS.register(name, obj() if isinstance(obj, type) and issubclass(obj, Sampler) else obj)
        return obj

    return register if sampler is None else register(sampler)


def register_dataset(name: str, dataset: Any | None = None):
    """Register a ``gmbench.dataset_spec.Dataset`` (a factory of a split's images and labels, with their shape)."""
    return _decorator_or_call(DATASETS, name, dataset)


def register_extractor(name: str, factory: Callable | None = None):
    """Register a factory ``(**options) -> FeatureExtractor``; usable as a decorator."""
    return _decorator_or_call(EXTRACTORS, name, factory)


def register_metric(name: str, fn: Callable | None = None, *, needs: str | tuple[str, ...] = "features",
                    higher_is_better: bool, unit: str = "", min_samples: int = 2,
                    extra_outputs: Mapping[str, bool] | None = None):
    """Register ``fn(fake, real, ctx) -> float | dict[str, float]`` (see Metric); usable as a decorator.

    ``needs``: "features", "logits" or a tuple of them (a metric needing logits is refused on an extractor
    without a classifier head), plus "dataset" where it reads the reference dataset's labels.
    ``min_samples``: the fewest images per side it is defined for. ``extra_outputs``: spreads it also
    returns, name -> higher_is_better (reported, never gated), e.g. {"kid_std": False}.
    """
    def register(f: Callable) -> Callable:
        needed = (needs,) if isinstance(needs, str) else needs
        try:
            metric = Metric(name, f, frozenset(needed), higher_is_better, unit, min_samples, dict(extra_outputs or {}))
        except (TypeError, ValueError):  # needs or extra_outputs of the wrong type
            raise GmbenchError(f"Cannot register metric {name!r}: needs must be a name or a tuple of names and "
                               f"extra_outputs a dict name -> higher_is_better; got needs={needs!r}, "
                               f"extra_outputs={extra_outputs!r}.") from None
        problem = _metric_problem(metric)
        if problem:
            raise GmbenchError(f"Cannot register metric {name!r}: {problem}.")
        if name not in METRICS._items:  # a taken name: METRICS.register says so
            taken = {out for m in METRICS._items.values() for out in m.outputs}
            clash = sorted(set(metric.outputs) & taken)
            if clash:
                raise GmbenchError(f"Cannot register metric {name!r}: its output ids {', '.join(clash)} are already "
                                   "scored by other metrics; rename them.")
        METRICS.register(name, metric)
        return f

    return register if fn is None else register(fn)


@dataclass(frozen=True)
class PluginFailure:
    name: str
    error: str


PLUGIN_FAILURES: list[PluginFailure] = []
_loaded = False


def load_plugins() -> list[PluginFailure]:
    """Call every ``gmbench.plugins`` entry point once; a failing plugin is reported, not fatal.

    ``sys.exit()`` in a plugin (at import or in its register function) counts as a failure too;
    Ctrl-C still stops gmbench.
    """
    failures = []
    for ep in entry_points(group=PLUGIN_GROUP):
        _loading.append(ep.dist.name if ep.dist else ep.value.partition(":")[0])
        try:
            ep.load()()
        except (Exception, SystemExit) as exc:  # a broken plugin must not stop the others, nor gmbench
            failure = PluginFailure(ep.name, f"{type(exc).__name__}: {exc}")
            failures.append(failure)
            warnings.warn(f"gmbench plugin {ep.name!r} ({ep.value}) failed to load: {failure.error}", stacklevel=2)
        finally:
            _loading.pop()
    PLUGIN_FAILURES.extend(failures)
    return failures


def ensure_loaded() -> None:
    """Import the built-in registrations and load plugins, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    load_plugins()
