"""The report's charts as PNG bytes (matplotlib, Agg backend); every interval is drawn by :func:`plot_intervals`."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from survey.analysis.agreement import Agreement
from survey.analysis.bootstrap import StrengthEstimate
from survey.analysis.bradley_terry import WinTieLoss
from survey.analysis.conditions import ConditionSummary
from survey.analysis.exclusions import ExclusionFlow
from survey.analysis.ratings import RatingDistribution


def _axes(n_rows: int, *, figsize: tuple[float, float] | None = None) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize or (7, 0.55 * n_rows + 1.2), dpi=110)


def _png(fig: Any, ax: Any, *, grid: str | None = "x") -> bytes:
    import matplotlib.pyplot as plt

    if grid:
        ax.grid(axis=grid, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def plot_intervals(
    ax: Any,
    positions: Sequence[float],
    estimates: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    vertical: bool = False,
    bars: bool = False,
    **style: Any,
) -> None:
    """Draw ``estimates`` with their confidence intervals as capped whiskers, at ``positions`` on the other axis.

    Estimates run along x (one row per position) unless ``vertical``; they are drawn as points (pass ``fmt`` or
    ``marker`` in ``style``) or, with ``bars``, as horizontal bars. A NaN bound (no interval, e.g. a single
    participant) draws no whisker on that side.
    """
    if bars and vertical:
        raise ValueError("plot_intervals draws bars horizontally only; pass vertical=False with bars=True")
    err = [
        [0.0 if math.isnan(lo) else est - lo for est, lo in zip(estimates, lows, strict=True)],
        [0.0 if math.isnan(hi) else hi - est for est, hi in zip(estimates, highs, strict=True)],
    ]
    if bars:
        ax.barh(list(positions), list(estimates), xerr=err, capsize=4, **style)
    elif vertical:
        ax.errorbar(list(positions), list(estimates), yerr=err, capsize=4, **style)
    else:
        ax.errorbar(list(estimates), list(positions), xerr=err, capsize=4, **style)


def _interval_rows(rows: Sequence[tuple[str, float, float, float]], **style: Any) -> tuple[Any, Any]:
    """A chart of one row per (label, estimate, CI low, CI high), the first at the bottom, each estimate
    drawn with its interval by :func:`plot_intervals` (``style`` passed on)."""
    fig, ax = _axes(len(rows))
    y = list(range(len(rows)))
    plot_intervals(ax, y, [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], **style)
    ax.set_yticks(y, [r[0] for r in rows])
    return fig, ax


def condition_means_png(summaries: list[ConditionSummary]) -> bytes:
    """Mean rating per condition as bars with their bootstrap CIs."""
    ordered = sorted(summaries, key=lambda r: r.mean)
    fig, ax = _interval_rows(
        [(r.condition, r.mean, r.ci_low, r.ci_high) for r in ordered], bars=True, color="#4C78A8", ecolor="#333"
    )
    ax.set_xlim(1, 7)
    ax.set_xlabel(
        f"mean similarity rating (1-7), {int(ordered[0].confidence * 100)}% bootstrap CI" if ordered else "mean rating"
    )
    return _png(fig, ax)


def strengths_png(estimates: list[StrengthEstimate], xlabel: str, color: str = "#F58518") -> bytes:
    """Fitted log-strengths (Bradley-Terry or Plackett-Luce) with their bootstrap CIs."""
    ordered = sorted(estimates, key=lambda e: e.strength)
    fig, ax = _interval_rows([(e.condition, e.strength, e.ci_low, e.ci_high) for e in ordered], fmt="o", color=color)
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlabel(xlabel)
    return _png(fig, ax)


def interaction_png(summaries: list[ConditionSummary]) -> bytes:
    """Mean rating with CIs across segmenters, one line per method."""
    segmenters = sorted({r.segmenter for r in summaries})
    fig, ax = _axes(0, figsize=(7, 4))
    methods = sorted({r.method for r in summaries})
    for i, method in enumerate(methods):
        rows = {r.segmenter: r for r in summaries if r.method == method}
        xs = [j + (i - (len(methods) - 1) / 2) * 0.04 for j, g in enumerate(segmenters) if g in rows]
        rs = [rows[g] for g in segmenters if g in rows]
        plot_intervals(
            ax,
            xs,
            [r.mean for r in rs],
            [r.ci_low for r in rs],
            [r.ci_high for r in rs],
            vertical=True,
            marker="o",
            label=method,
        )
    ax.set_xticks(range(len(segmenters)), segmenters)
    ax.set_xlabel("segmenter")
    ax.set_ylabel("mean rating (1-7), 95% CI")
    ax.legend(title="method", frameon=False)
    return _png(fig, ax, grid="y")


def agreement_png(agreements: list[Agreement]) -> bytes:
    """Krippendorff's alpha per protocol with its bootstrap CI (protocols without an alpha left out)."""
    shown = [a for a in agreements if not math.isnan(a.alpha)]
    fig, ax = _interval_rows(
        [(f"{a.protocol} ({a.level})", a.alpha, a.ci_low, a.ci_high) for a in shown], fmt="o", color="#54A24B"
    )
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlim(min([-0.1] + [a.ci_low for a in shown if not math.isnan(a.ci_low)]) - 0.05, 1.0)
    ax.set_xlabel("Krippendorff's alpha, 95% bootstrap CI (0 = chance, 1 = perfect agreement)")
    return _png(fig, ax)


def rating_distributions_png(dists: list[RatingDistribution]) -> bytes:
    """Share of each rating 1..7 per condition, stacked."""
    import matplotlib

    ordered = sorted(dists, key=lambda d: sum((i + 1) * c for i, c in enumerate(d.counts)) / max(sum(d.counts), 1))
    fig, ax = _axes(len(ordered))
    cmap = matplotlib.colormaps["RdYlGn"]
    left = [0.0] * len(ordered)
    for k in range(7):
        share = [d.counts[k] / max(sum(d.counts), 1) for d in ordered]
        ax.barh(range(len(ordered)), share, left=left, color=cmap(k / 6), label=str(k + 1), edgecolor="white", lw=0.5)
        left = [a + b for a, b in zip(left, share, strict=True)]
    ax.set_yticks(range(len(ordered)), [d.condition for d in ordered])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of ratings")
    ax.legend(title="rating", ncols=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=8)
    return _png(fig, ax, grid=None)


def win_rate_heatmap_png(wtl: list[WinTieLoss]) -> bytes:
    """Row condition's win rate (ties half) against the column condition."""
    conds = sorted({w.a for w in wtl} | {w.b for w in wtl})
    rate = {(w.a, w.b): w.win_rate for w in wtl}
    count = {(w.a, w.b): w.n for w in wtl}
    grid = [[rate.get((a, b), float("nan")) for b in conds] for a in conds]
    fig, ax = _axes(0, figsize=(1.1 * len(conds) + 3, 0.9 * len(conds) + 1.6))
    im = ax.imshow(grid, cmap="RdBu", vmin=0, vmax=1)
    for i, a in enumerate(conds):
        for j, b in enumerate(conds):
            if i != j and count.get((a, b)):
                ax.text(j, i, f"{grid[i][j]:.2f}\n(n={count[(a, b)]})", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(conds)), conds, rotation=30, ha="right")
    ax.set_yticks(range(len(conds)), conds)
    ax.set_xlabel("against")
    fig.colorbar(im, ax=ax, label="win rate of row vs column (ties count half)")
    return _png(fig, ax, grid=None)


def exclusion_flow_png(ex: ExclusionFlow) -> bytes:
    """Participants left after each exclusion rule, in the order the rules apply."""
    steps = [
        ("started", ex.started),
        ("passed attention checks", ex.started - ex.excluded_failed_checks),
        ("not too fast", ex.started - ex.excluded_failed_checks - ex.excluded_too_fast),
        ("complete = kept", ex.kept),
    ]
    if ex.excluded_suspected_bots:  # the bot rule applies after speed, before completeness
        steps[2:2] = [("no signal of automation", ex.started - ex.excluded_failed_checks - ex.excluded_too_fast
                       - ex.excluded_suspected_bots)]  # fmt: skip
    if ex.excluded_inconsistent:  # the consistency rule (repeat trials) applies after completeness
        steps[-1:] = [("complete", ex.kept + ex.excluded_inconsistent), ("consistent = kept", ex.kept)]
    fig, ax = _axes(len(steps))
    y = list(range(len(steps)))[::-1]
    ax.barh(y, [n for _, n in steps], color="#72B7B2")
    for yy, (_, n) in zip(y, steps, strict=True):
        ax.text(n, yy, f" {n}", va="center")
    ax.set_yticks(y, [name for name, _ in steps])
    ax.set_xlabel("participants")
    ax.set_xlim(0, max(ex.started, 1) * 1.12)
    return _png(fig, ax)
