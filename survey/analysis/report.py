"""Self-contained HTML report: one function per section formats its part of :class:`StudyResults`; nothing is
computed here. The sections on choices are in :mod:`survey.analysis.report_choices`, the mixed model's in
:mod:`survey.analysis.report_mixed`."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime

from survey.analysis.agreement import Agreement, SplitHalf
from survey.analysis.conditions import ConditionSummary
from survey.analysis.consistency import Consistency, ConsistencySpread
from survey.analysis.exclusions import ExclusionFlow
from survey.analysis.formatting import (
    CI_NEEDS_TWO_PARTICIPANTS,
    format_ci,
    format_p,
    html_table,
    img_tag,
    join_html,
    p_clause,
)
from survey.analysis.plots import (
    agreement_png,
    condition_means_png,
    exclusion_flow_png,
    interaction_png,
    rating_distributions_png,
)
from survey.analysis.ratings import FriedmanResult, PairedComparison, PrecisionAtK, RatingDistribution, ZScoreResult
from survey.analysis.report_choices import best_worst_section, pairwise_section, plackett_luce_section
from survey.analysis.report_mixed import mixed_model_section
from survey.analysis.report_sequential import sequential_section
from survey.analysis.report_swipe import swipe_section
from survey.analysis.results import ObjectiveVsHuman, StudyResults
from survey.participants.bot_signals import SIGNALS


def participants_section(ex: ExclusionFlow) -> str:
    return join_html(
        f"<h2>Participants</h2><p>{ex.started} started, {ex.completed} completed the trials, "
        f"{ex.kept} kept for analysis.</p>",
        bots_part(ex),
        html_table(
            [
                "started",
                "completed",
                "excluded: failed checks",
                "excluded: too fast",
                "excluded: suspected bots",
                "excluded: incomplete",
                "excluded: inconsistent",
                "kept",
            ],
            [
                [
                    ex.started,
                    ex.completed,
                    ex.excluded_failed_checks,
                    ex.excluded_too_fast,
                    ex.excluded_suspected_bots,
                    ex.excluded_incomplete,
                    ex.excluded_inconsistent,
                    ex.kept,
                ]
            ],
        ),
        img_tag(exclusion_flow_png(ex), "Participants left after each exclusion rule") if ex.started else "",
    )


def bots_part(ex: ExclusionFlow) -> str:
    """How many participants showed signals of automation, by signal, and whether they were excluded."""
    if not ex.suspected_bots:
        return "<p>No participant showed a signal of automation.</p>"
    excluded = (
        f"{ex.excluded_suspected_bots} of them excluded (<code>--exclude-suspected-bots</code>)"
        if ex.excluded_suspected_bots
        else "kept in the analysis (exclude them with <code>--exclude-suspected-bots</code>)"
    )
    return join_html(
        f"<p>{ex.suspected_bots} participant(s) showed at least one signal of automation; {excluded}.</p>",
        html_table(
            ["signal", "participants", "what triggers it"],
            [[name, n, SIGNALS.get(name, "unknown signal")] for name, n in ex.bot_signals],
        ),
    )


def _friedman_sentence(fr: FriedmanResult | None) -> str:
    if fr is None:
        return ""
    if math.isnan(fr.pvalue):
        return f"<p>Too few complete references ({fr.n_blocks}) for the Friedman test.</p>"
    verdict = "differ significantly" if fr.pvalue < 0.05 else "do not differ significantly"
    return (
        f"<p>The conditions {verdict} (Friedman &chi;&sup2; = {fr.statistic:.2f}, {p_clause(fr.pvalue)}, "
        f"Kendall's W = {fr.kendalls_w:.2f}; {fr.n_blocks} references with every condition rated, averaged "
        "over participants).</p>"
    )


def _wilcoxon_part(wilcoxon: list[PairedComparison]) -> str:
    if not wilcoxon:
        return ""
    esc = html.escape
    sig = [w for w in wilcoxon if w.pvalue_holm < 0.05]
    table = html_table(
        ["A", "B", "references", "median A-B", "p", "p (Holm)", "effect (rank-biserial)"],
        [
            [
                w.a,
                w.b,
                w.n,
                f"{w.median_difference:.2f}",
                format_p(w.pvalue),
                format_p(w.pvalue_holm),
                f"{w.rank_biserial:.2f}",
            ]
            for w in wilcoxon
        ],
    )
    verdict = (
        "Significant after Holm correction: "
        + "; ".join(f"{esc(w.a)} rated {'higher' if w.rank_biserial > 0 else 'lower'} than {esc(w.b)}" for w in sig)
        if sig
        else "No pair of conditions differs significantly after Holm correction."
    )
    return join_html(table, f"<p>{verdict}</p>")


def ratings_section(
    conditions: list[ConditionSummary], fr: FriedmanResult | None, wilcoxon: list[PairedComparison]
) -> str:
    """Condition means with CIs, the Friedman test and the pairwise Wilcoxon tests."""
    if not conditions:
        return (
            "<h2>Ratings (1-7)</h2>\n"
            "<p>No ratings yet: this part fills in once participants have answered rating trials.</p>"
        )
    rows = [
        [
            r.condition,
            r.n_ratings,
            r.n_participants,
            f"{r.mean:.2f}",
            f"{r.median:g}",
            format_ci(r, missing=CI_NEEDS_TWO_PARTICIPANTS),
        ]
        for r in sorted(conditions, key=lambda r: -r.mean)
    ]
    return join_html(
        "<h2>Ratings (1-7)</h2>",
        html_table(["condition (method/segmenter)", "ratings", "participants", "mean", "median", "95% CI"], rows),
        img_tag(condition_means_png(conditions), "Mean rating per condition with confidence intervals"),
        _friedman_sentence(fr),
        _wilcoxon_part(wilcoxon),
    )


def interaction_section(conditions: list[ConditionSummary]) -> str:
    if len({r.method for r in conditions}) < 2 and len({r.segmenter for r in conditions}) < 2:
        return ""
    return join_html(
        "<h3>Method &times; segmenter</h3>",
        img_tag(interaction_png(conditions), "Interaction plot: mean rating per segmenter, one line per method"),
        "<p>Parallel lines: the segmenter changes every method's ratings alike; crossing or "
        "diverging lines: it helps some methods more than others (see the mixed model).</p>",
    )


def distributions_section(dists: list[RatingDistribution]) -> str:
    if not dists:
        return ""
    return join_html(
        "<h3>Rating distributions</h3>",
        img_tag(rating_distributions_png(dists), "Share of each rating 1-7 per condition"),
        html_table(["condition", *[str(k) for k in range(1, 8)]], [[d.condition, *d.counts] for d in dists]),
    )


def zscore_section(zs: ZScoreResult | None, conditions: list[ConditionSummary], fr: FriedmanResult | None) -> str:
    """The per-rater z-score robustness check, compared with the raw means (``conditions``) and Friedman test."""
    if zs is None or not zs.conditions:
        return ""
    esc = html.escape
    intro = (
        "<p>Each participant's ratings standardised (minus their own mean, divided by their own "
        "standard deviation), so that raters who use the scale differently weigh alike"
        + (
            f"; {zs.constant_raters} participant(s) gave one rating to everything and count as 0"
            if zs.constant_raters
            else ""
        )
        + ".</p>"
    )
    table = html_table(
        ["condition", "ratings", "mean z", f"{int(zs.confidence * 100)}% CI"],
        [[z.condition, z.n, f"{z.mean:.2f}", format_ci(z)] for z in sorted(zs.conditions, key=lambda z: -z.mean)],
    )
    raw_order = [r.condition for r in sorted(conditions, key=lambda r: -r.mean)]
    z_order = [z.condition for z in sorted(zs.conditions, key=lambda z: -z.mean)]
    same = (
        "orders the conditions as the raw means do"
        if raw_order == z_order
        else "orders the conditions differently from the raw means: " + " &gt; ".join(esc(c) for c in z_order)
    )
    zf = zs.friedman
    if not math.isnan(zf.pvalue):
        z_sig = zf.pvalue < 0.05
        agree = (
            ""
            if fr is None or math.isnan(fr.pvalue)
            else " (as on the raw ratings)"
            if z_sig == (fr.pvalue < 0.05)
            else " (unlike the raw ratings: read the raw result with care)"
        )
        same += (
            f"; the conditions {'differ' if z_sig else 'do not differ'} significantly on z-scores{agree} "
            f"(Friedman &chi;&sup2; = {zf.statistic:.2f}, {p_clause(zf.pvalue)})"
        )
    return join_html("<h3>Robustness: per-rater z-scores</h3>", intro, table, f"<p>The z-scored analysis {same}.</p>")


def precision_section(precision: list[PrecisionAtK]) -> str:
    if not precision:
        return ""
    return join_html(
        "<h3>Precision@5 as judged by people</h3>",
        html_table(
            ["condition", "grids with ticks", "share of items ticked similar", "95% CI"],
            [
                [p.condition, p.n, f"{p.precision:.2f}", format_ci(p)]
                for p in sorted(precision, key=lambda p: -p.precision)
            ],
        ),
    )


def _split_half_sentence(sh: SplitHalf | None) -> str:
    if sh is None or not sh.splits:
        return ""
    full = (
        f"{sh.spearman_brown:.2f} for the full sample (Spearman-Brown)"
        if sh.spearman_brown is not None
        else f"full-sample value (Spearman-Brown) n/a because {html.escape(sh.spearman_brown_reason or '')}"
    )
    return (
        f"<p>Split-half reliability of the condition means: r = {sh.r:.2f} between random halves "
        f"of the participants ({sh.splits} splits), {full}.</p>"
    )


def agreement_section(agreements: list[Agreement], sh: SplitHalf | None) -> str:
    """Krippendorff's alpha per protocol and the split-half reliability of the condition means."""
    if not agreements and not sh:
        return ""
    return join_html(
        "<h2>Agreement between participants</h2>",
        html_table(
            ["answers", "Krippendorff's alpha", "95% CI", "level", "units judged 2+ times", "raters"],
            [
                [
                    a.protocol,
                    "n/a" if math.isnan(a.alpha) else f"{a.alpha:.2f}",
                    format_ci(a),
                    a.level,
                    a.units,
                    a.raters,
                ]
                for a in agreements
            ],
        ),
        img_tag(agreement_png(agreements), "Krippendorff's alpha with confidence intervals")
        if any(not math.isnan(a.alpha) for a in agreements)
        else "",
        _split_half_sentence(sh),
    )


def objective_section(objective: list[ObjectiveVsHuman], spearman: float | None) -> str:
    if not objective:
        return ""
    return join_html(
        "<h2>People vs. objective retrieval</h2>",
        html_table(
            ["condition", "recall@5 (same product)", "mAP", "human mean rating"],
            [
                [
                    o.condition,
                    f"{o.recall_at_5:.3f}",
                    f"{o.mean_average_precision:.3f}",
                    "n/a" if o.human_mean is None else f"{o.human_mean:.2f}",
                ]
                for o in objective
            ],
        ),
        ""
        if spearman is None
        else f"<p>Spearman rank correlation of recall@5 with the human mean rating: {spearman:.2f}.</p>",
    )


def consistency_section(consistency: list[Consistency], spread: list[ConsistencySpread] | None = None) -> str:
    """Test-retest consistency from repeat trials (only when the study repeated some): over all
    participants, then how far participants differ."""
    if not consistency:
        return ""
    rows = [
        [
            c.protocol,
            c.pairs,
            c.participants,
            f"{c.agreement:.2f} [{c.agreement_ci_low:.2f}, {c.agreement_ci_high:.2f}]",
            "-" if c.kappa is None else f"{c.kappa:.2f} [{c.kappa_ci_low:.2f}, {c.kappa_ci_high:.2f}]",
        ]
        for c in consistency
    ]
    return join_html(
        "<h2>Test-retest consistency</h2><p>Repeat trials: a unit shown to the same participant again, later and "
        "with the sets in other positions. Agreement: ratings within one point, choices identical. Ratings also "
        "give the quadratic-weighted kappa. 95% intervals from a bootstrap over participants.</p>",
        html_table(["protocol", "repeats", "participants", "agreement [95% CI]", "weighted kappa [95% CI]"], rows),
        _spread_part(spread or []),
    )


def _spread_part(spread: list[ConsistencySpread]) -> str:
    """How far participants differ in their agreement with themselves (empty without repeats)."""
    if not spread:
        return ""
    rows = [
        [s.protocol, s.participants, *(f"{v:.2f}" for v in (s.lowest, s.q1, s.median, s.q3)), s.below_half]
        for s in spread
    ]
    return join_html(
        "<p>Per participant: each participant's agreement with themselves (the export's "
        "<code>consistency</code> column has it per participant, over all protocols; "
        "<code>report --min-consistency X</code> excludes those below X).</p>",
        html_table(["protocol", "participants", "lowest", "25%", "median", "75%", "below 0.5"], rows),
    )


def render_html(results: StudyResults) -> str:
    """The whole report: every section in order, in one page with its charts embedded."""
    esc = html.escape
    r = results
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = join_html(
        participants_section(r.exclusions),
        sequential_section(r.sequential),
        ratings_section(r.conditions, r.friedman, r.wilcoxon),
        interaction_section(r.conditions),
        distributions_section(r.rating_distribution),
        zscore_section(r.zscored, r.conditions, r.friedman),
        mixed_model_section(r.mixed_model, r.mixed_model_failure),
        precision_section(r.precision),
        pairwise_section(r.win_tie_loss, r.bradley_terry, r.bradley_terry_interval),
        best_worst_section(r.best_worst),
        plackett_luce_section(r.plackett_luce),
        agreement_section(r.agreement, r.split_half),
        objective_section(r.objective, r.objective_spearman),
        consistency_section(r.consistency, r.consistency_spread),
        swipe_section(r.swipe),
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lookalike report: {esc(r.study)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .35rem .8rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }} .note {{ color: #555; font-size: .9rem; }}
</style></head><body>
<h1>Lookalike report: {esc(r.study)}</h1>
<p>Generated {now}.</p>
{body}
<p class="note">Confidence intervals: percentile bootstrap over participants ({r.n_boot} resamples, seed
{r.seed}). A judgement of a grid that several conditions produced counts for each of them. Attention-check
trials are never part of a condition's results.</p>
</body></html>
"""
