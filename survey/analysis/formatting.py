"""Numbers, intervals and HTML pieces, formatted one way for the report, the command line and the admin page."""

from __future__ import annotations

import base64
import html
import math
from typing import Protocol

CI_NEEDS_TWO_PARTICIPANTS = "n/a (needs 2+ participants)"  # a condition's CI with a single rater


class Interval(Protocol):
    """Any result with a confidence interval (NaN bounds: no interval)."""

    @property
    def ci_low(self) -> float: ...

    @property
    def ci_high(self) -> float: ...


def format_ci(x: Interval, *, missing: str = "n/a") -> str:
    """``[low, high]`` to two decimals, or ``missing`` when the interval is undefined (NaN)."""
    return missing if math.isnan(x.ci_low) else f"[{x.ci_low:.2f}, {x.ci_high:.2f}]"


def format_p(x: float) -> str:
    """A p-value for a table: three decimals, ``< 0.001``, or ``n/a`` (NaN)."""
    return "n/a" if math.isnan(x) else ("< 0.001" if x < 0.001 else f"{x:.3f}")


def p_clause(x: float) -> str:
    """``p &lt; 0.001`` or ``p = 0.123``, for running HTML text."""
    return "p &lt; 0.001" if x < 0.001 else f"p = {format_p(x)}"


def img_tag(png: bytes, alt: str) -> str:
    """An inline PNG (data URI), so the report is one self-contained file."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def html_table(header: list[str], rows: list[list[object]]) -> str:
    """A table with every cell escaped (condition names and participant text are data, never markup)."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def join_html(*parts: str) -> str:
    """The non-empty fragments, one per line."""
    return "\n".join(p for p in parts if p)
