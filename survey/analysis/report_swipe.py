"""The report's section on swipe rounds: like rates of the recommended products per condition, the base
rate of random products and each condition's lift over it, like rates by position, the like model and
the paired comparisons; only formats :class:`~survey.analysis.swipe_results.SwipeResults`."""

from __future__ import annotations

import html

from survey.analysis.formatting import format_ci, format_p, html_table, join_html, p_clause
from survey.analysis.swipe_results import SwipeResults


def swipe_section(sw: SwipeResults | None) -> str:
    """Everything the swipe rounds measured (empty without swipe answers)."""
    if sw is None:
        return ""
    rounds = ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(sw.rounds.items()))
    return join_html(
        "<h2>Swipe rounds: would people like the recommended products?</h2>",
        f"<p>Rounds: {html.escape(rounds) or 'none'}. A round's reference is a product the participant "
        "liked among random products of a category; its recommendations are then liked or not, one by one.</p>",
        _rates_part(sw),
        _positions_part(sw),
        _model_part(sw),
        _paired_part(sw),
        _rating_part(sw),
    )


def _rates_part(sw: SwipeResults) -> str:
    base = sw.base_rate
    base_text = (
        ""
        if base is None
        else f"<p>Base rate (random products of the choose phase, likes / swipes pooled: the maximum-likelihood "
        f"estimate under the stop at the first like, a swipe-weighted rate when participants differ): "
        f"<b>{base.rate:.3f}</b> {format_ci(base)} from {base.n_swipes} swipes of {base.n_participants} "
        f"participants (the mean of the rounds' like shares, {base.naive_round_mean:.3f}, is biased upwards by "
        "that stop).</p>"
        '<p class="note">A lift above 1 is not by itself better than random: people who like readily reach '
        "the judged sets more often, so even random recommendations show a lift slightly above 1 (1.06 to 1.15 "
        "in simulations, survey/analysis/swipe_stats.py). Compare conditions with each other (below), or add a "
        "random-recommendation condition as the control.</p>"
    )
    if sw.like_rates is None:
        return base_text
    lift = {x.condition: x for x in sw.lifts.lifts} if sw.lifts is not None else {}
    rows = []
    for r in sw.like_rates.rates:
        x = lift.get(r.condition)
        ratio = "n/a" if x is None else f"{x.ratio:.2f} [{x.ratio_ci_low:.2f}, {x.ratio_ci_high:.2f}]"
        diff = "n/a" if x is None else f"{x.difference:+.3f} [{x.difference_ci_low:+.3f}, {x.difference_ci_high:+.3f}]"
        rows.append([r.condition, r.n_participants, r.n_products, r.likes, f"{r.rate:.3f}", format_ci(r), ratio, diff])
    return join_html(
        base_text,
        html_table(
            [
                "condition",
                "participants",
                "products",
                "liked",
                "like rate",
                "95% CI",
                "lift (ratio)",
                "lift (difference)",
            ],
            rows,
        ),
    )


def _positions_part(sw: SwipeResults) -> str:
    pos = sw.positions
    if pos is None:
        return ""
    return join_html(
        "<h3>Like rate by place in the set</h3>",
        html_table(
            ["place", "products", "liked", "like rate", "95% CI"],
            [[p.rank, p.n_products, p.likes, f"{p.rate:.3f}", format_ci(p)] for p in pos.rates],
        ),
        f"<p>Slope per place: {pos.slope:+.4f} [{pos.slope_ci_low:+.4f}, {pos.slope_ci_high:+.4f}] "
        "(below 0: products shown earlier are liked more).</p>",
    )


def _model_part(sw: SwipeResults) -> str:
    if sw.model is None:
        return (
            f"<p>The like model could not be estimated: {html.escape(sw.model_failure)}</p>" if sw.model_failure else ""
        )
    m = sw.model
    converged = "" if m.converged else " <b>The fit did not converge; do not use it.</b>"
    return join_html(
        "<h3>Model of likes</h3>",
        f"<p>{html.escape(m.method)}: <code>{html.escape(m.formula)}</code>, {m.n_obs} products of "
        f"{m.n_clusters} participants; odds ratios against {html.escape(m.reference)}. Joint test of no "
        f"difference between conditions: Wald F = {m.wald_chi2 / m.wald_df:.2f} on ({m.wald_df}, "
        f"{m.wald_df_denominator}) df, {p_clause(m.wald_pvalue)}."
        f"{converged}</p>",
        html_table(
            ["condition", "odds ratio", "95% CI", "p"],
            [[o.condition, f"{o.odds_ratio:.2f}", format_ci(o), format_p(o.pvalue)] for o in m.odds_ratios],
        ),
    )


def _paired_part(sw: SwipeResults) -> str:
    if not sw.paired:
        return ""
    return join_html(
        "<h3>Conditions compared within participants</h3>",
        html_table(
            ["A", "B", "participants", "like rate A", "like rate B", "difference", "p (Wilcoxon)", "p (Holm)"],
            [
                [c.a, c.b, c.n_participants, f"{c.rate_a:.3f}", f"{c.rate_b:.3f}", f"{c.difference:+.3f}", *_ps(c)]
                for c in sw.paired
            ],
        ),
    )


def _ps(c) -> list[str]:
    return [format_p(c.pvalue), format_p(c.pvalue_holm)]


def _rating_part(sw: SwipeResults) -> str:
    parts = []
    c = sw.rating_agreement
    if c is not None and c.rho is not None:
        parts.append(
            f"<p>Like share of a round's set against its similarity rating: Spearman rho = {c.rho:.2f} "
            f"({p_clause(c.pvalue or float('nan'))}, {c.n} rounds).</p>"
        )
    o = sw.objective
    if o is not None and o.rho is not None:
        parts.append(f"<p>Like rate against objective recall@5, over {o.n} conditions: Spearman rho = {o.rho:.2f}.</p>")
    return join_html(*parts)
