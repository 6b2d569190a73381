"""Self-contained HTML report: formats analysis results, computes nothing itself."""

from __future__ import annotations

import base64
import html
import io
import math
from datetime import datetime, timezone

from .analysis import ConditionSummary
from .results import StudyResults
from .stats import Agreement, ExclusionFlow, RatingDistribution, StrengthEstimate, WinTieLoss


def format_ci(r: ConditionSummary) -> str:
    if math.isnan(r.ci_low):
        return "n/a (needs 2+ participants)"
    return f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"


def _axes(n_rows: int, *, figsize: tuple[float, float] | None = None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize or (7, 0.55 * n_rows + 1.2), dpi=110)


def _png(fig, ax, *, grid: str | None = "x") -> bytes:
    import matplotlib.pyplot as plt

    if grid:
        ax.grid(axis=grid, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def bar_chart_png(summaries: list[ConditionSummary]) -> bytes:
    ordered = sorted(summaries, key=lambda r: r.mean)
    fig, ax = _axes(len(ordered))
    y = range(len(ordered))
    means = [r.mean for r in ordered]
    err = [[0.0 if math.isnan(r.ci_low) else r.mean - r.ci_low for r in ordered],
           [0.0 if math.isnan(r.ci_high) else r.ci_high - r.mean for r in ordered]]
    ax.barh(list(y), means, xerr=err, color="#4C78A8", ecolor="#333", capsize=4)
    ax.set_yticks(list(y), [r.condition for r in ordered])
    ax.set_xlim(1, 7)
    ax.set_xlabel(f"mean similarity rating (1-7), {int(ordered[0].confidence * 100)}% bootstrap CI"
                  if ordered else "mean rating")
    return _png(fig, ax)


def strength_chart_png(estimates: list[StrengthEstimate], xlabel: str, color: str = "#F58518") -> bytes:
    ordered = sorted(estimates, key=lambda e: e.strength)
    fig, ax = _axes(len(ordered))
    y = list(range(len(ordered)))
    xerr = [[0.0 if math.isnan(e.ci_low) else e.strength - e.ci_low for e in ordered],
            [0.0 if math.isnan(e.ci_high) else e.ci_high - e.strength for e in ordered]]
    ax.errorbar([e.strength for e in ordered], y, fmt="o", color=color, xerr=xerr, capsize=4)
    ax.set_yticks(y, [e.condition for e in ordered])
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlabel(xlabel)
    return _png(fig, ax)


def bt_chart_png(estimates: list[StrengthEstimate]) -> bytes:
    return strength_chart_png(estimates, "Bradley-Terry log-strength (pairwise), 95% bootstrap CI")


def interaction_chart_png(summaries: list[ConditionSummary]) -> bytes:
    """Mean rating with CIs across segmenters, one line per method."""
    segmenters = sorted({r.segmenter for r in summaries})
    fig, ax = _axes(0, figsize=(7, 4))
    methods = sorted({r.method for r in summaries})
    for i, method in enumerate(methods):
        rows = {r.segmenter: r for r in summaries if r.method == method}
        xs = [j + (i - (len(methods) - 1) / 2) * 0.04 for j, g in enumerate(segmenters) if g in rows]
        rs = [rows[g] for g in segmenters if g in rows]
        err = [[0.0 if math.isnan(r.ci_low) else r.mean - r.ci_low for r in rs],
               [0.0 if math.isnan(r.ci_high) else r.ci_high - r.mean for r in rs]]
        ax.errorbar(xs, [r.mean for r in rs], yerr=err, marker="o", capsize=4, label=method)
    ax.set_xticks(range(len(segmenters)), segmenters)
    ax.set_xlabel("segmenter")
    ax.set_ylabel("mean rating (1-7), 95% CI")
    ax.legend(title="method", frameon=False)
    return _png(fig, ax, grid="y")


def distribution_chart_png(dists: list[RatingDistribution]) -> bytes:
    """Share of each rating 1..7 per condition, stacked."""
    import matplotlib

    ordered = sorted(dists, key=lambda d: sum((i + 1) * c for i, c in enumerate(d.counts)) / max(sum(d.counts), 1))
    fig, ax = _axes(len(ordered))
    cmap = matplotlib.colormaps["RdYlGn"]
    left = [0.0] * len(ordered)
    for k in range(7):
        share = [d.counts[k] / max(sum(d.counts), 1) for d in ordered]
        ax.barh(range(len(ordered)), share, left=left, color=cmap(k / 6), label=str(k + 1), edgecolor="white", lw=0.5)
        left = [a + b for a, b in zip(left, share)]
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


def exclusion_chart_png(ex: ExclusionFlow) -> bytes:
    """Participants left after each exclusion rule, in the order the rules apply."""
    steps = [("started", ex.started),
             ("passed attention checks", ex.started - ex.excluded_failed_checks),
             ("not too fast", ex.started - ex.excluded_failed_checks - ex.excluded_too_fast),
             ("complete = kept", ex.kept)]
    fig, ax = _axes(len(steps))
    y = list(range(len(steps)))[::-1]
    ax.barh(y, [n for _, n in steps], color="#72B7B2")
    for yy, (_, n) in zip(y, steps):
        ax.text(n, yy, f" {n}", va="center")
    ax.set_yticks(y, [name for name, _ in steps])
    ax.set_xlabel("participants")
    ax.set_xlim(0, max(ex.started, 1) * 1.12)
    return _png(fig, ax)


def agreement_chart_png(agreements: list[Agreement]) -> bytes:
    shown = [a for a in agreements if not math.isnan(a.alpha)]
    fig, ax = _axes(len(shown))
    y = list(range(len(shown)))
    err = [[0.0 if math.isnan(a.ci_low) else a.alpha - a.ci_low for a in shown],
           [0.0 if math.isnan(a.ci_high) else a.ci_high - a.alpha for a in shown]]
    ax.errorbar([a.alpha for a in shown], y, xerr=err, fmt="o", color="#54A24B", capsize=4)
    ax.set_yticks(y, [f"{a.protocol} ({a.level})" for a in shown])
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlim(min([-0.1] + [a.ci_low for a in shown if not math.isnan(a.ci_low)]) - 0.05, 1.0)
    ax.set_xlabel("Krippendorff's alpha, 95% bootstrap CI (0 = chance, 1 = perfect agreement)")
    return _png(fig, ax)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(header: list[str], rows: list[list[object]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _p(x: float) -> str:
    return "n/a" if math.isnan(x) else ("< 0.001" if x < 0.001 else f"{x:.3f}")


def _ci(lo: float, hi: float) -> str:
    return "n/a" if math.isnan(lo) else f"[{lo:.2f}, {hi:.2f}]"


def _rank_sentence(estimates: list[StrengthEstimate], what: str) -> str:
    """Plain words for ranks with ties: who is first, and whether the intervals separate them."""
    esc = html.escape
    if len(estimates) < 2:
        return ""
    if any(math.isnan(e.ci_low) for e in estimates):
        return f"<p>With a single participant, {what} gives no intervals; the ranking is not tested.</p>"
    top = [e.condition for e in sorted(estimates, key=lambda e: -e.strength) if e.rank == 1]
    if len(top) == len(estimates):
        return (f"<p>By {what}, the intervals of all conditions overlap: the data do not show any condition "
                "to be preferred.</p>")
    if len(top) == 1:
        first = f"{esc(top[0])} ranks first and its interval does not overlap the runner-up's"
    else:
        first = (f"{', '.join(esc(c) for c in top)} share the first rank (their intervals overlap, so the data "
                 "do not separate them)")
    return f"<p>By {what}, {first}; {len({e.rank for e in estimates})} distinct ranks in all.</p>"


def render_html(results: StudyResults) -> str:
    esc = html.escape
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ex = results.exclusions
    parts = [f"<h2>Participants</h2><p>{ex.started} started, {ex.completed} completed the trials, "
             f"{ex.kept} kept for analysis.</p>",
             _table(["started", "completed", "excluded: failed checks", "excluded: too fast",
                     "excluded: incomplete", "kept"],
                    [[ex.started, ex.completed, ex.excluded_failed_checks, ex.excluded_too_fast,
                      ex.excluded_incomplete, ex.kept]])]
    if ex.started:
        parts.append(_img(exclusion_chart_png(ex), "Participants left after each exclusion rule"))
    parts.append("<h2>Ratings (1-7)</h2>")
    if not results.conditions:
        parts.append("<p>No ratings yet: this part fills in once participants have answered rating trials.</p>")
    else:
        rows = [[r.condition, r.n_ratings, r.n_participants, f"{r.mean:.2f}", f"{r.median:g}", format_ci(r)]
                for r in sorted(results.conditions, key=lambda r: -r.mean)]
        parts.append(_table(["condition (method/segmenter)", "ratings", "participants", "mean", "median", "95% CI"],
                            rows))
        parts.append(_img(bar_chart_png(results.conditions), "Mean rating per condition with confidence intervals"))
        fr = results.friedman
        if fr is not None and not math.isnan(fr.pvalue):
            verdict = "differ significantly" if fr.pvalue < 0.05 else "do not differ significantly"
            parts.append(f"<p>The conditions {verdict} (Friedman &chi;&sup2; = {fr.statistic:.2f}, "
                         f"p {esc(_p(fr.pvalue)) if fr.pvalue < 0.001 else '= ' + _p(fr.pvalue)}, Kendall's W = {fr.kendalls_w:.2f}; {fr.n_blocks} references "
                         f"with every condition rated, averaged over participants).</p>")
        elif fr is not None:
            parts.append(f"<p>Too few complete references ({fr.n_blocks}) for the Friedman test.</p>")
        sig = [w for w in results.wilcoxon if w.pvalue_holm < 0.05]
        if results.wilcoxon:
            parts.append(_table(["A", "B", "references", "median A-B", "p", "p (Holm)", "effect (rank-biserial)"],
                                [[w.a, w.b, w.n, f"{w.median_difference:.2f}", _p(w.pvalue), _p(w.pvalue_holm),
                                  f"{w.rank_biserial:.2f}"] for w in results.wilcoxon]))
            parts.append("<p>" + ("Significant after Holm correction: " + "; ".join(
                f"{esc(w.a)} rated {'higher' if w.rank_biserial > 0 else 'lower'} than {esc(w.b)}" for w in sig)
                if sig else "No pair of conditions differs significantly after Holm correction.") + "</p>")
        if len({r.method for r in results.conditions}) >= 2 or len({r.segmenter for r in results.conditions}) >= 2:
            parts.append("<h3>Method &times; segmenter</h3>")
            parts.append(_img(interaction_chart_png(results.conditions),
                              "Interaction plot: mean rating per segmenter, one line per method"))
            parts.append("<p>Parallel lines: the segmenter changes every method's ratings alike; crossing or "
                         "diverging lines: it helps some methods more than others (see the mixed model).</p>")
        if results.rating_distribution:
            parts.append("<h3>Rating distributions</h3>")
            parts.append(_img(distribution_chart_png(results.rating_distribution),
                              "Share of each rating 1-7 per condition"))
            parts.append(_table(["condition", *[str(k) for k in range(1, 8)]],
                                [[d.condition, *d.counts] for d in results.rating_distribution]))
    zs = results.zscored
    if zs is not None and zs.conditions:
        parts.append("<h3>Robustness: per-rater z-scores</h3>")
        parts.append("<p>Each participant's ratings standardised (minus their own mean, divided by their own "
                     "standard deviation), so that raters who use the scale differently weigh alike"
                     + (f"; {zs.constant_raters} participant(s) gave one rating to everything and count as 0"
                        if zs.constant_raters else "") + ".</p>")
        parts.append(_table(["condition", "ratings", "mean z", f"{int(zs.confidence * 100)}% CI"],
                            [[z.condition, z.n, f"{z.mean:.2f}", _ci(z.ci_low, z.ci_high)]
                             for z in sorted(zs.conditions, key=lambda z: -z.mean)]))
        raw_order = [r.condition for r in sorted(results.conditions, key=lambda r: -r.mean)]
        z_order = [z.condition for z in sorted(zs.conditions, key=lambda z: -z.mean)]
        same = ("orders the conditions as the raw means do" if raw_order == z_order else
                "orders the conditions differently from the raw means: " + " &gt; ".join(esc(c) for c in z_order))
        zf, fr = zs.friedman, results.friedman
        if not math.isnan(zf.pvalue):
            z_sig = zf.pvalue < 0.05
            agree = ("" if fr is None or math.isnan(fr.pvalue) else
                     " (as on the raw ratings)" if z_sig == (fr.pvalue < 0.05) else
                     " (unlike the raw ratings: read the raw result with care)")
            same += (f"; the conditions {'differ' if z_sig else 'do not differ'} significantly on z-scores{agree} "
                     f"(Friedman &chi;&sup2; = {zf.statistic:.2f}, p {'&lt; 0.001' if zf.pvalue < 0.001 else '= ' + _p(zf.pvalue)})")
        parts.append(f"<p>The z-scored analysis {same}.</p>")
    mm = results.mixed_model
    if mm is not None:
        parts.append("<h3>Method &times; segmenter (mixed model)</h3>")
        parts.append(f"<p>{esc(mm.formula)}; {mm.n} ratings, {mm.participants} participants, {mm.references} "
                     f"references{'' if mm.converged else '; the fit did NOT converge, read with care'}.</p>")
        parts.append(_table(["term", "estimate", "std. error", "p", "95% CI"],
                            [[t.term, f"{t.estimate:.2f}", f"{t.std_error:.2f}", _p(t.pvalue),
                              f"[{t.ci_low:.2f}, {t.ci_high:.2f}]"] for t in mm.terms]))
        sig_terms = [t for t in mm.terms if t.term != "Intercept" and t.pvalue < 0.05]
        parts.append("<p>" + ("Terms different from zero (p &lt; 0.05): " + "; ".join(
            f"{esc(t.term)} {t.estimate:+.2f} rating points" for t in sig_terms) + ". Other terms are not."
            if sig_terms else "No method, segmenter or interaction term differs significantly from zero.") + "</p>")
    if results.precision:
        parts.append("<h3>Precision@5 as judged by people</h3>")
        parts.append(_table(["condition", "grids with ticks", "share of items ticked similar", "95% CI"],
                            [[p.condition, p.n, f"{p.precision:.2f}",
                              "n/a" if math.isnan(p.ci_low) else f"[{p.ci_low:.2f}, {p.ci_high:.2f}]"]
                             for p in sorted(results.precision, key=lambda p: -p.precision)]))
    if results.bradley_terry:
        parts.append("<h2>Pairwise comparisons (Bradley-Terry)</h2>")
        if results.win_tie_loss:
            parts.append("<h3>Wins, ties and losses</h3>")
            parts.append(_table(["A", "B", "answers", "A chosen", "ties", "B chosen", "win rate of A (ties half)"],
                                [[w.a, w.b, w.n, w.wins, w.ties, w.losses,
                                  "n/a" if math.isnan(w.win_rate) else f"{w.win_rate:.2f}"]
                                 for w in results.win_tie_loss if w.a < w.b]))
            parts.append(_img(win_rate_heatmap_png(results.win_tie_loss), "Win rate of each condition against each other"))
        parts.append(_table(["condition", "log-strength", "95% CI", "rank"],
                            [[e.condition, f"{e.strength:.2f}", _ci(e.ci_low, e.ci_high), e.rank]
                             for e in sorted(results.bradley_terry, key=lambda e: (e.rank, -e.strength))]))
        parts.append(_img(bt_chart_png(results.bradley_terry), "Bradley-Terry strengths with confidence intervals"))
        parts.append("<p>Conditions share a rank when their interval overlaps the next better one's.</p>")
        parts.append(_rank_sentence(results.bradley_terry, "Bradley-Terry strength"))
    if results.best_worst:
        parts.append("<h2>Best-worst choices</h2>")
        parts.append(_table(["condition", "shown", "best", "worst", "score (best-worst)/shown", "95% CI"],
                            [[b.condition, b.shown, b.best, b.worst, f"{b.score:.2f}", _ci(b.ci_low, b.ci_high)]
                             for b in sorted(results.best_worst, key=lambda b: -b.score)]))
    if results.plackett_luce:
        parts.append("<h3>Plackett-Luce strengths (best-worst)</h3>")
        parts.append("<p>Each answer read as: the best set chosen among all shown, then the worst among the rest "
                     "(sequential best-worst Plackett-Luce model, maximum likelihood).</p>")
        parts.append(_table(["condition", "log-strength", "95% CI", "rank"],
                            [[e.condition, f"{e.strength:.2f}", _ci(e.ci_low, e.ci_high), e.rank]
                             for e in sorted(results.plackett_luce, key=lambda e: (e.rank, -e.strength))]))
        parts.append(_img(strength_chart_png(results.plackett_luce, "Plackett-Luce log-strength (best-worst), "
                                             "95% bootstrap CI", color="#B279A2"),
                          "Plackett-Luce strengths with confidence intervals"))
        parts.append(_rank_sentence(results.plackett_luce, "Plackett-Luce strength"))
    if results.agreement or results.split_half:
        parts.append("<h2>Agreement between participants</h2>")
        parts.append(_table(["answers", "Krippendorff's alpha", "95% CI", "level", "units judged 2+ times", "raters"],
                            [[a.protocol, "n/a" if math.isnan(a.alpha) else f"{a.alpha:.2f}",
                              "n/a" if math.isnan(a.ci_low) else f"[{a.ci_low:.2f}, {a.ci_high:.2f}]",
                              a.level, a.units, a.raters] for a in results.agreement]))
        if any(not math.isnan(a.alpha) for a in results.agreement):
            parts.append(_img(agreement_chart_png(results.agreement), "Krippendorff's alpha with confidence intervals"))
        sh = results.split_half
        if sh is not None and sh.splits:
            parts.append(f"<p>Split-half reliability of the condition means: r = {sh.r:.2f} between random halves "
                         f"of the participants ({sh.splits} splits), {sh.spearman_brown:.2f} for the full sample "
                         "(Spearman-Brown).</p>")
    if results.objective:
        parts.append("<h2>People vs. objective retrieval</h2>")
        parts.append(_table(["condition", "recall@5 (same product)", "mAP", "human mean rating"],
                            [[o.condition, f"{o.recall_at_5:.3f}", f"{o.mean_average_precision:.3f}",
                              "n/a" if o.human_mean is None else f"{o.human_mean:.2f}"] for o in results.objective]))
        if results.objective_spearman is not None:
            parts.append(f"<p>Spearman rank correlation of recall@5 with the human mean rating: "
                         f"{results.objective_spearman:.2f}.</p>")
    body = "\n".join(parts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lookalike report: {esc(results.study)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .35rem .8rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }} .note {{ color: #555; font-size: .9rem; }}
</style></head><body>
<h1>Lookalike report: {esc(results.study)}</h1>
<p>Generated {now}.</p>
{body}
<p class="note">Confidence intervals: percentile bootstrap over participants ({results.n_boot} resamples, seed
{results.seed}). A judgement of a grid that several conditions produced counts for each of them. Attention-check
trials are never part of a condition's results.</p>
</body></html>
"""
