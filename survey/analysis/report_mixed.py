"""The report's method x segmenter section: the crossed mixed model, how it was fitted (optimisers, warnings,
shared grids) and its ordinal robustness check; only formats :class:`MixedModelResult`."""

from __future__ import annotations

import html

from survey.analysis.formatting import format_ci, format_p, html_table, join_html
from survey.analysis.mixed_model import MixedModelResult


def mixed_model_section(mm: MixedModelResult | None, failure: str | None = None) -> str:
    esc = html.escape
    if mm is None:
        if failure is None:
            return ""
        return f"<h3>Method &times; segmenter (mixed model)</h3>\n<p>Not estimated: {esc(failure)}.</p>"
    sig_terms = [t for t in mm.terms if t.term != "Intercept" and t.pvalue < 0.05]
    verdict = (
        "Terms different from zero (p &lt; 0.05): "
        + "; ".join(f"{esc(t.term)} {t.estimate:+.2f} rating points" for t in sig_terms)
        + ". Other terms are not."
        if sig_terms
        else "No method, segmenter or interaction term differs significantly from zero."
    )
    runs = ", ".join(
        f"{esc(r.optimizer)} {r.loglik:.3f}{'' if r.success else f' (stopped: {esc(r.message)})'}"
        for r in mm.optimizers
    )
    convergence = (
        f"Converged: the REML log-likelihood is {mm.loglik:.3f}; two optimisers from different starts reached {runs} "
        f"(they must agree within {mm.loglik_tolerance:g}), and the gradient at the estimate is {mm.gradient:.1e} "
        f"(at most {mm.gradient_tolerance:g})."
        if mm.converged
        else f"The fit did NOT converge, read with care: the optimisers reached {runs} (REML log-likelihood; "
        f"they must agree within {mm.loglik_tolerance:g}), and the gradient at the estimate is {mm.gradient:.1e} "
        f"(it must be at most {mm.gradient_tolerance:g})."
    )
    shared = (
        f" {mm.shared_answers} answers were on a grid that several conditions share: {esc(mm.shared_grids)}."
        if mm.shared_answers
        else ""
    )
    warned = (
        "<p>Warnings raised while fitting: " + "; ".join(esc(w) for w in mm.warnings) + ".</p>"
        if mm.warnings
        else "<p>No warnings were raised while fitting.</p>"
    )
    return join_html(
        "<h3>Method &times; segmenter (mixed model)</h3>",
        f"<p>{esc(mm.formula)}, fitted by REML: {mm.n} answers, each entered once, from {mm.participants} "
        f"participants on {mm.references} references.{shared}</p>",
        html_table(
            ["term", "estimate", "std. error", "z", "p", "95% CI"],
            [
                [t.term, f"{t.estimate:.2f}", f"{t.std_error:.2f}", f"{t.z:.2f}", format_p(t.pvalue), format_ci(t)]
                for t in mm.terms
            ],
        ),
        f"<p>Tests: {esc(mm.test)}. Variance components (rating points squared): participant "
        f"{mm.var_participant:.3f}, reference {mm.var_reference:.3f}, residual {mm.var_residual:.3f}. "
        f"{convergence}</p>",
        warned,
        f"<p>{verdict}</p>",
        _ordinal_check(mm),
    )


def _ordinal_check(mm: MixedModelResult) -> str:
    """The proportional odds robustness check beside the linear mixed model, and whether they agree."""
    esc = html.escape
    if mm.ordinal is None:
        return f"<p>Robustness check on the ordinal scale: {esc(mm.ordinal_failure or 'not fitted')}.</p>"
    o = mm.ordinal
    linear = {t.term: t.pvalue < 0.05 for t in mm.terms}
    differ = [t.term for t in o.terms if (t.pvalue < 0.05) != linear[t.term]]
    same = (
        "Each term is significant (p &lt; 0.05) in both models or in neither."
        if not differ
        else f"Significant in one model but not the other: {esc('; '.join(differ))}; read those terms with care."
    )
    return join_html(
        "<p>Robustness check treating the ratings as ordered categories, not numbers: "
        f"{esc(o.formula)} ({o.n} answers, {o.participants} participants; log odds ratios of a higher rating, "
        f"standard errors {esc(o.std_errors)}).</p>",
        html_table(
            ["term", "log odds ratio", "std. error", "p", "95% CI"],
            [[t.term, f"{t.estimate:.2f}", f"{t.std_error:.2f}", format_p(t.pvalue), format_ci(t)] for t in o.terms],
        ),
        f"<p>{same}</p>",
    )
