"""The report's sections on choices: pairwise comparisons (wins, ties, losses and Bradley-Terry strengths)
and best-worst choices (scores and Plackett-Luce strengths); only formats their results."""

from __future__ import annotations

import html
import math

from survey.analysis.bootstrap import StrengthEstimate
from survey.analysis.bradley_terry import WinTieLoss
from survey.analysis.formatting import format_ci, html_table, img_tag, join_html
from survey.analysis.plackett_luce import BestWorst
from survey.analysis.plots import strengths_png, win_rate_heatmap_png


def pairwise_section(wtl: list[WinTieLoss], bt: list[StrengthEstimate], interval: str) -> str:
    """Wins, ties and losses per pair, and the Bradley-Terry strengths with their ranks; ``interval``
    names the fit and interval (an adaptive study's: "adaptive assignment (floor k): ...")."""
    if not bt:
        return ""
    counts = (
        ""
        if not wtl
        else join_html(
            "<h3>Wins, ties and losses</h3>",
            html_table(
                ["A", "B", "answers", "A chosen", "ties", "B chosen", "win rate of A (ties half)"],
                [
                    [w.a, w.b, w.n, w.wins, w.ties, w.losses, "n/a" if math.isnan(w.win_rate) else f"{w.win_rate:.2f}"]
                    for w in wtl
                    if w.a < w.b
                ],
            ),
            img_tag(win_rate_heatmap_png(wtl), "Win rate of each condition against each other"),
        )
    )
    return join_html(
        "<h2>Pairwise comparisons (Bradley-Terry)</h2>",
        counts,
        f"<p>Strengths: {html.escape(interval)}.</p>",
        _strengths_table(bt),
        img_tag(
            strengths_png(bt, "Bradley-Terry log-strength (pairwise), 95% CI"),
            "Bradley-Terry strengths with confidence intervals",
        ),
        "<p>Conditions share a rank when their interval overlaps the next better one's.</p>",
        _rank_sentence(bt, "Bradley-Terry strength"),
    )


def best_worst_section(bw: list[BestWorst]) -> str:
    """Per condition: how often shown, chosen best and worst, and the best-minus-worst score with its interval."""
    if not bw:
        return ""
    return join_html(
        "<h2>Best-worst choices</h2>",
        html_table(
            ["condition", "shown", "best", "worst", "score (best-worst)/shown", "95% CI"],
            [
                [b.condition, b.shown, b.best, b.worst, f"{b.score:.2f}", format_ci(b)]
                for b in sorted(bw, key=lambda b: -b.score)
            ],
        ),
    )


def plackett_luce_section(pl: list[StrengthEstimate]) -> str:
    """The Plackett-Luce strengths of the best-worst answers, with their intervals and ranks."""
    if not pl:
        return ""
    return join_html(
        "<h3>Plackett-Luce strengths (best-worst)</h3>",
        "<p>Each answer read as: the best set chosen among all shown, then the worst among the rest "
        "(sequential best-worst Plackett-Luce model, maximum likelihood).</p>",
        _strengths_table(pl),
        img_tag(
            strengths_png(pl, "Plackett-Luce log-strength (best-worst), 95% bootstrap CI", color="#B279A2"),
            "Plackett-Luce strengths with confidence intervals",
        ),
        _rank_sentence(pl, "Plackett-Luce strength"),
    )


def _rank_sentence(estimates: list[StrengthEstimate], what: str) -> str:
    """Plain words for ranks with ties: who is first, and whether the intervals separate them."""
    esc = html.escape
    if len(estimates) < 2:
        return ""
    if any(math.isnan(e.ci_low) for e in estimates):
        return f"<p>With a single participant, {what} gives no intervals; the ranking is not tested.</p>"
    top = [e.condition for e in sorted(estimates, key=lambda e: -e.strength) if e.rank == 1]
    if len(top) == len(estimates):
        return (
            f"<p>By {what}, the intervals of all conditions overlap: the data do not show any condition "
            "to be preferred.</p>"
        )
    if len(top) == 1:
        first = f"{esc(top[0])} ranks first and its interval does not overlap the runner-up's"
    else:
        first = (
            f"{', '.join(esc(c) for c in top)} share the first rank (their intervals overlap, so the data "
            "do not separate them)"
        )
    return f"<p>By {what}, {first}; {len({e.rank for e in estimates})} distinct ranks in all.</p>"


def _strengths_table(estimates: list[StrengthEstimate]) -> str:
    """Log-strengths with intervals and ranks, best rank first."""
    return html_table(
        ["condition", "log-strength", "95% CI", "rank"],
        [
            [e.condition, f"{e.strength:.2f}", format_ci(e), e.rank]
            for e in sorted(estimates, key=lambda e: (e.rank, -e.strength))
        ],
    )
