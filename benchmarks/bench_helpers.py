"""Constants of the micro-benchmarks (a plain module: conftest.py is not importable by name reliably)."""

BATCH = 32  # images per training step and per sampling call
