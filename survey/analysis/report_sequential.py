"""The stopping rule's looks, formatted for the report, ``lookalike study status`` and the admin page;
only formats :class:`~survey.analysis.sequential.SequentialResult`."""

from __future__ import annotations

import html
import math

from survey.analysis.formatting import html_table, join_html
from survey.analysis.sequential import Look, SequentialResult


def _num(x: float, fmt: str = "+.3f") -> str:
    return "" if math.isnan(x) else format(x, fmt)


def look_rows(res: SequentialResult, *, unblinded: bool = True) -> list[dict[str, str | int]]:
    """One row per look. Blinded (``unblinded=False``): only |z| against the boundary and the decision,
    no estimate, interval or direction."""
    rows: list[dict[str, str | int]] = []
    for lk in res.looks:
        row: dict[str, str | int] = {
            "look": lk.look,
            "planned participants": lk.planned,
            "with both conditions": lk.participants,
            "|z|": _num(abs(lk.z), ".2f"),
            "boundary |z|": "" if math.isnan(lk.boundary) else f"{lk.boundary:.3f}",
            "decision": lk.decision,
        }
        if unblinded:
            row["difference"] = _num(lk.estimate)
            row[f"adjusted {1 - res.alpha:.0%} interval"] = _interval(lk)
        rows.append(row)
    return rows


def _interval(lk: Look) -> str:
    return "" if math.isnan(lk.ci_low) else f"[{lk.ci_low:+.3f}, {lk.ci_high:+.3f}]"


def format_sequential(res: SequentialResult) -> str:
    """Plain text for the command line."""
    lines = [
        f"Primary comparison: {res.comparison}",
        f"Stopping rule: {res.rule}",
        f"{'look':>4} {'planned':>7} {'n':>4} {'difference':>10} {'|z|':>6} {'bound':>6}  "
        f"{'adjusted interval':<20} decision",
    ]
    for lk in res.looks:
        bound = "" if math.isnan(lk.boundary) else f"{lk.boundary:.3f}"
        lines.append(
            f"{lk.look:>4} {lk.planned:>7} {lk.participants:>4} {_num(lk.estimate):>10} {_num(abs(lk.z), '.2f'):>6} "
            f"{bound:>6}  {_interval(lk):<20} {lk.decision}"
        )
    lines.append(f"Now: {res.decision}")
    return "\n".join(lines)


def sequential_section(res: SequentialResult | None) -> str:
    """The report's section: the rule, each look and the decision."""
    if res is None:
        return ""
    esc = html.escape
    rows = look_rows(res)
    cells: list[list[object]] = [list(r.values()) for r in rows]
    return join_html(
        "<h2>Primary comparison and stopping rule</h2>",
        f"<p>{esc(res.comparison)}. {esc(res.rule[0].upper() + res.rule[1:])}. {res.analysed} analysed "
        "participants so far, in the order they finished; the adjusted intervals are repeated confidence intervals "
        "(group-sequential) or the confidence sequence (anytime), valid whatever the rule decided.</p>",
        html_table(list(rows[0]) if rows else ["look"], cells),
        f"<p><b>{esc(res.decision[0].upper() + res.decision[1:])}.</b></p>",
    )
