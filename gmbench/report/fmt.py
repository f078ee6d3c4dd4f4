"""Number formatting and a plain Markdown table writer (pandas' to_markdown needs tabulate)."""
from __future__ import annotations

import math

import pandas as pd


def _fixed_decimals(value: float, digits: int) -> int | None:
    """Decimals that show ``value`` to ``digits`` significant digits in fixed point, or None where
    fixed point would be unreadable (below 1e-3 or from 1e6 on: scientific notation then)."""
    magnitude = abs(value)
    if magnitude == 0:
        return digits - 1
    if magnitude < 1e-3 or magnitude >= 1e6:
        return None
    return max(0, digits - 1 - math.floor(math.log10(magnitude)))


def number(value: float, digits: int = 4) -> str:
    """``digits`` significant digits, fixed point where readable; empty for a missing value."""
    if value is None or pd.isna(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if float(value).is_integer() and abs(value) < 1e6:  # counts: params, NFE, steps
        return str(int(value))
    decimals = _fixed_decimals(value, digits)
    return f"{value:.{digits}g}" if decimals is None else f"{value:.{decimals}f}"


def mean_std(mean: float, std: float, n: int | None) -> str:
    """"mean ± std (n=3)": the mean to 4 significant digits, the std to as many decimals (2 significant
    digits where that would show 0); no std for one seed; no "(n=...)" when ``n`` is None (the
    caller states the seed count elsewhere)."""
    if pd.isna(mean):
        return ""
    count = "" if n is None else f" (n={1 if pd.isna(n) else int(n)})"
    if pd.isna(std) or (n is not None and (pd.isna(n) or n < 2)):
        return number(mean) + count
    decimals = _fixed_decimals(mean, 4)
    fixed = decimals is not None and round(std, decimals) != 0 and std < 1e6
    spread = f"{std:.{decimals}f}" if fixed else f"{std:.2g}"
    return f"{number(mean)} ± {spread}{count}"


def time_to_cell(mean: float, std: float, n: int, n_reached: int, shown_n: int | None = None) -> str:
    """A time_to_* cell: "mean ± std" when every seed reached the target, "not reached" when none did,
    "not reached by k of n seeds" when some did not (their mean time is +inf: never reached)."""
    if pd.isna(mean):
        return ""
    if n_reached == n:
        return mean_std(mean, std, shown_n)
    if n_reached == 0:
        return "not reached"
    return f"not reached by {n - n_reached} of {n} seeds"


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
