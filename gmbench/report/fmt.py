"""Number formatting and a plain Markdown table writer (pandas' to_markdown needs tabulate)."""
from __future__ import annotations

import math

import pandas as pd


def number(value: float, digits: int = 4) -> str:
    """``digits`` significant digits; empty for a missing value."""
    if value is None or pd.isna(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def mean_std(mean: float, std: float, n: int | None) -> str:
    """"mean ± std (n=3)": mean to 4 and std to 2 significant digits; no std for one seed;
    no "(n=...)" when ``n`` is None (the caller states the seed count elsewhere)."""
    if pd.isna(mean):
        return ""
    count = "" if n is None else f" (n={1 if pd.isna(n) else int(n)})"
    if pd.isna(std) or (n is not None and (pd.isna(n) or n < 2)):
        return number(mean) + count
    return f"{number(mean)} ± {number(std, 2)}{count}"


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
