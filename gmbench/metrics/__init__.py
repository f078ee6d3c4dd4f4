"""Feature extractors and quality scores (importing this package registers the extractors)."""
