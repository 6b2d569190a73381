"""Self-contained HTML report: formats analysis results, computes nothing itself."""

from __future__ import annotations

import base64
import html
import io
import math
from datetime import datetime, timezone

from .analysis import ConditionSummary


def format_ci(r: ConditionSummary) -> str:
    if math.isnan(r.ci_low):
        return "n/a (needs 2+ participants)"
    return f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"


def bar_chart_png(summaries: list[ConditionSummary]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted(summaries, key=lambda r: r.mean)
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(ordered) + 1.2), dpi=110)
    y = range(len(ordered))
    means = [r.mean for r in ordered]
    err = [[0.0 if math.isnan(r.ci_low) else r.mean - r.ci_low for r in ordered],
           [0.0 if math.isnan(r.ci_high) else r.ci_high - r.mean for r in ordered]]
    ax.barh(list(y), means, xerr=err, color="#4C78A8", ecolor="#333", capsize=4)
    ax.set_yticks(list(y), [r.condition for r in ordered])
    ax.set_xlim(1, 7)
    ax.set_xlabel(f"mean similarity rating (1-7), {int(ordered[0].confidence * 100)}% bootstrap CI"
                  if ordered else "mean rating")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def render_html(study_name: str, summaries: list[ConditionSummary], *, n_participants: int) -> str:
    esc = html.escape
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if not summaries:
        body = "<p>No ratings yet: the report fills in once participants have answered.</p>"
    else:
        rows = "\n".join(
            f"<tr><td>{esc(r.condition)}</td><td>{r.n_ratings}</td><td>{r.n_participants}</td>"
            f"<td>{r.mean:.2f}</td><td>{format_ci(r)}</td></tr>"
            for r in sorted(summaries, key=lambda r: -r.mean))
        png = base64.b64encode(bar_chart_png(summaries)).decode()
        first = summaries[0]
        body = f"""
<table>
<thead><tr><th>condition (method/segmenter)</th><th>ratings</th><th>participants</th><th>mean</th>
<th>{int(first.confidence * 100)}% CI</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<img alt="Mean rating per condition with confidence intervals" src="data:image/png;base64,{png}">
<p class="note">Confidence intervals: percentile bootstrap over participants ({first.n_boot} resamples,
seed {first.seed}). A rating of a grid that several conditions produced counts for each of them.</p>"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lookalike report: {esc(study_name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .35rem .8rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }} .note {{ color: #555; font-size: .9rem; }}
</style></head><body>
<h1>Lookalike report: {esc(study_name)}</h1>
<p>{n_participants} participant(s) with at least one rating. Generated {now}.</p>
{body}
</body></html>
"""
