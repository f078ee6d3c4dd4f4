"""gmbench: a comparative benchmark suite for generative image models."""
from gmbench.errors import GmbenchError
from gmbench.registry import register_dataset, register_extractor, register_model
from gmbench.report.records import load_records

__version__ = "0.1.0"
__all__ = ["GmbenchError", "load_records", "register_dataset", "register_extractor", "register_model", "__version__"]
