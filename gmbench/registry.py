"""Named registries of models, datasets and feature extractors, plus third-party plugins.

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
from typing import Any, Callable, Generic, TypeVar

from gmbench.dataset_spec import dataset_problem
from gmbench.errors import GmbenchError

T = TypeVar("T")
PLUGIN_GROUP = "gmbench.plugins"
BUILTIN = "built-in"
_loading: list[str] = []  # the distribution whose plugin entry point is being loaded, if any
_BUILTIN_MODULES = ("gmbench.datasets.builtin", "gmbench.models.gan", "gmbench.models.diffusion", "gmbench.models.reference",
                    "gmbench.models.vae", "gmbench.metrics")


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


def _is_dataset(obj: Any) -> bool | str:
    return dataset_problem(obj) or True


MODELS: Registry[type] = Registry("model", _is_model_class, "a subclass of gmbench.models.base.GenerativeModel "
                                  "whose Config is a dataclass (@dataclass(frozen=True) with defaults)")
DATASETS: Registry[Any] = Registry("dataset", _is_dataset, "a gmbench.dataset_spec.Dataset")
EXTRACTORS: Registry[Callable] = Registry("extractor", callable, "a callable that builds a FeatureExtractor")


def _decorator_or_call(registry: Registry, name: str, obj: Any):
    if obj is None:
        return lambda o: registry.register(name, o)
    return registry.register(name, obj)


def register_model(name: str, cls: type | None = None):
    """Register a GenerativeModel subclass; usable as ``@register_model("name")``."""
    return _decorator_or_call(MODELS, name, cls)


def register_dataset(name: str, dataset: Any | None = None):
    """Register a ``gmbench.dataset_spec.Dataset`` (a factory of a split's images and labels, with their shape)."""
    return _decorator_or_call(DATASETS, name, dataset)


def register_extractor(name: str, factory: Callable | None = None):
    """Register a factory ``(**options) -> FeatureExtractor``; usable as a decorator."""
    return _decorator_or_call(EXTRACTORS, name, factory)


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
