"""Self-contained HTML report: formats analysis results, computes nothing itself."""

from __future__ import annotations

import base64
import html
import io
import math
from datetime import datetime, timezone

from .analysis import ConditionSummary
from .results import StudyResults
from .stats import BTEstimate


def format_ci(r: ConditionSummary) -> str:
    if math.isnan(r.ci_low):
        return "n/a (needs 2+ participants)"
    return f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"


def _axes(n_rows: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 0.55 * n_rows + 1.2), dpi=110)


def _png(fig, ax) -> bytes:
    import matplotlib.pyplot as plt

    ax.grid(axis="x", alpha=0.3)
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


def bt_chart_png(estimates: list[BTEstimate]) -> bytes:
    ordered = sorted(estimates, key=lambda e: e.strength)
    fig, ax = _axes(len(ordered))
    y = list(range(len(ordered)))
    ax.errorbar([e.strength for e in ordered], y, fmt="o", color="#F58518",
                xerr=[[e.strength - e.ci_low for e in ordered], [e.ci_high - e.strength for e in ordered]], capsize=4)
    ax.set_yticks(y, [e.condition for e in ordered])
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlabel("Bradley-Terry log-strength (pairwise), 95% bootstrap CI")
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
                         f"p {_p(fr.pvalue) if fr.pvalue < 0.001 else '= ' + _p(fr.pvalue)}, Kendall's W = {fr.kendalls_w:.2f}; {fr.n_blocks} references "
                         f"with every condition rated, averaged over participants).</p>")
        elif fr is not None:
            parts.append(f"<p>Too few complete references ({fr.n_blocks}) for the Friedman test.</p>")
        sig = [w for w in results.wilcoxon if w.pvalue_holm < 0.05]
        if results.wilcoxon:
            parts.append(_table(["A", "B", "references", "median A-B", "p", "p (Holm)", "effect (rank-biserial)"],
                                [[w.a, w.b, w.n, f"{w.median_difference:.2f}", _p(w.pvalue), _p(w.pvalue_holm),
                                  f"{w.rank_biserial:.2f}"] for w in results.wilcoxon]))
            parts.append("<p>" + ("Significant after Holm correction: " + "; ".join(
                f"{esc(w.a)} {'>' if w.median_difference > 0 else '<'} {esc(w.b)}" for w in sig)
                if sig else "No pair of conditions differs significantly after Holm correction.") + "</p>")
    mm = results.mixed_model
    if mm is not None:
        parts.append("<h3>Method &times; segmenter (mixed model)</h3>")
        parts.append(f"<p>{esc(mm.formula)}; {mm.n} ratings, {mm.participants} participants, {mm.references} "
                     f"references{'' if mm.converged else '; the fit did NOT converge, read with care'}.</p>")
        parts.append(_table(["term", "estimate", "std. error", "p", "95% CI"],
                            [[t.term, f"{t.estimate:.2f}", f"{t.std_error:.2f}", _p(t.pvalue),
                              f"[{t.ci_low:.2f}, {t.ci_high:.2f}]"] for t in mm.terms]))
    if results.precision:
        parts.append("<h3>Precision@5 as judged by people</h3>")
        parts.append(_table(["condition", "grids with ticks", "share of items ticked similar", "95% CI"],
                            [[p.condition, p.n, f"{p.precision:.2f}",
                              "n/a" if math.isnan(p.ci_low) else f"[{p.ci_low:.2f}, {p.ci_high:.2f}]"]
                             for p in sorted(results.precision, key=lambda p: -p.precision)]))
    if results.bradley_terry:
        parts.append("<h2>Pairwise comparisons (Bradley-Terry)</h2>")
        parts.append(_table(["condition", "log-strength", "95% CI", "rank"],
                            [[e.condition, f"{e.strength:.2f}", f"[{e.ci_low:.2f}, {e.ci_high:.2f}]", e.rank]
                             for e in sorted(results.bradley_terry, key=lambda e: e.rank)]))
        parts.append(_img(bt_chart_png(results.bradley_terry), "Bradley-Terry strengths with confidence intervals"))
        parts.append("<p>Conditions share a rank when their interval overlaps the next better one's.</p>")
    if results.best_worst:
        parts.append("<h2>Best-worst choices</h2>")
        parts.append(_table(["condition", "shown", "best", "worst", "score (best-worst)/shown"],
                            [[b.condition, b.shown, b.best, b.worst, f"{b.score:.2f}"]
                             for b in sorted(results.best_worst, key=lambda b: -b.score)]))
    if results.agreement or results.split_half:
        parts.append("<h2>Agreement between participants</h2>")
        parts.append(_table(["answers", "Krippendorff's alpha", "95% CI", "level", "units judged 2+ times", "raters"],
                            [[a.protocol, "n/a" if math.isnan(a.alpha) else f"{a.alpha:.2f}",
                              "n/a" if math.isnan(a.ci_low) else f"[{a.ci_low:.2f}, {a.ci_high:.2f}]",
                              a.level, a.units, a.raters] for a in results.agreement]))
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
