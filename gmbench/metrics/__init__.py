"""Feature extractors and quality scores (importing this package registers the extractors; the metrics register
in gmbench.metrics.builtin)."""
from gmbench.metrics import inception  # noqa: F401  (registers inception-v3-tf)
from gmbench.metrics import lenet  # noqa: F401  (registers mnist-lenet)
from gmbench.metrics.evaluate import Score, check_metrics, evaluate
from gmbench.metrics.features import build_extractor

__all__ = ["Score", "build_extractor", "check_metrics", "evaluate"]
