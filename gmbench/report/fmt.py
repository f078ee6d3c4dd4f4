"""Number formatting and a plain Markdown table writer (pandas' to_markdown needs tabulate)."""
from __future__ import annotations

import math

import pandas as pd


def number(value: float) -> str:
    """Four significant digits; empty for a missing value."""
    if value is None or pd.isna(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def mean_std(mean: float, std: float, n: int) -> str:
    """"mean ± std (n=3)"; the std is left out for a single seed."""
    if pd.isna(mean):
        return ""
    if n is None or pd.isna(n) or n < 2 or pd.isna(std):
        return f"{number(mean)} (n={1 if n is None or pd.isna(n) else int(n)})"
    return f"{number(mean)} ± {number(std)} (n={int(n)})"


def percent(value: float) -> str:
    if pd.isna(value):
        return ""
    return f"{value:+.1f}%"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a DataFrame of strings (index dropped)."""
    def cell(v) -> str:
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
