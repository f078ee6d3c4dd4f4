"""gmbench: a comparative benchmark suite for generative image models.

``import gmbench`` loads neither torch nor pandas nor matplotlib: ``load_records`` (pandas) is imported on
first use, and the report code imports pandas and matplotlib itself.
"""
from gmbench.errors import GmbenchError
from gmbench.registry import register_dataset, register_extractor, register_metric, register_model, register_sampler

__version__ = "0.1.0"
__all__ = ["GmbenchError", "load_records", "register_dataset", "register_extractor", "register_metric",
           "register_model", "register_sampler", "__version__"]


def __getattr__(name: str):
    if name == "load_records":  # pandas costs ~0.4 s to import; only record readers need it
        from gmbench.report.records import load_records

        return load_records
    raise AttributeError(f"module 'gmbench' has no attribute {name!r}")
