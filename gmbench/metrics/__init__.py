"""Feature extractors and quality scores (importing this package registers the extractors)."""

from gmbench.metrics import inception  # noqa: F401  (registers "inception-v3-tf")
