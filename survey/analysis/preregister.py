"""A pre-registration sheet (``lookalike preregister``): Markdown written from the study's configuration
(what was built: conditions, protocols, assignment, checks, the ``[primary]`` comparison and ``[stopping]``
rule) and a power run, ready to upload to a registry (OSF, AsPredicted) before data collection.

Only formats: the numbers come from :mod:`survey.analysis.power` / :mod:`survey.analysis.swipe_power` (the
power run) and :mod:`survey.analysis.group_sequential` (boundaries); every analysis named is the one the
report runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from scipy import stats

from survey import protocols as protocol_registry
from survey.analysis.costs import SizeCost, Timing
from survey.analysis.exclusions import ExclusionRules
from survey.analysis.group_sequential import efficacy_bounds, inflation_factor, spent
from survey.analysis.mixed_model import FORMULA
from survey.analysis.sequential import ANYTIME_MIN, cs_half_width
from survey.study.config import StudyConfig

#: what the report computes per protocol (survey.analysis.protocol_parts), in words
ANALYSES = {
    "rating": [
        "mean and median rating per condition, with 95% participant-clustered percentile bootstrap intervals",
        "Friedman test over reference blocks (mean rating per reference x condition, complete blocks), Kendall's W",
        "Wilcoxon signed-rank tests of every pair of conditions over reference blocks, Holm-corrected",
        f"linear mixed model {FORMULA} (REML, Wald z tests), with a proportional-odds model as robustness check",
        "the same tests on per-rater z-scored ratings (robustness check)",
    ],
    "pairwise": [
        "win/tie/loss table per pair of conditions (ties as half-wins)",
        "Bradley-Terry strengths with 95% participant-clustered bootstrap intervals",
    ],
    "ranking": [
        "best-worst scores per condition with 95% bootstrap intervals",
        "best-worst Plackett-Luce strengths with 95% participant-clustered bootstrap intervals",
    ],
    "swipe": [
        "like rate per condition (participant-clustered bootstrap intervals) and the base rate of random products",
        "lift of each condition over the base rate",
        "GEE logistic model liked ~ condition clustered by participant (joint Wald test)",
        "Wilcoxon signed-rank tests of the per-participant like rates of every pair, Holm-corrected",
    ],
}


@dataclass(frozen=True)
class PowerTable:
    """A power run in the terms of the sheet: per size, the power of each analysis, with what each size costs."""

    protocol: str
    analyses: tuple[str, ...]  # each analysis powered, in words
    pair: tuple[str, str]
    settings: str  # where the effects come from, replications, seed, in words
    sizes: tuple[int, ...]
    power: tuple[tuple[tuple[float, float, float], ...], ...]  # per analysis, per size: power, Wilson interval
    needed: tuple[int | None, ...]  # per analysis: fewest participants tried reaching the target
    alpha: float
    target: float
    costs: tuple[SizeCost, ...] = ()  # per size (and the stopping rule's maximum): hours, cost, days
    timing: Timing | None = None  # minutes per participant and their source


@dataclass(frozen=True)
class StudyFacts:
    """What the build made: the conditions, references and categories."""

    conditions: tuple[str, ...]
    references: int
    categories: int


def fingerprint(config: StudyConfig) -> str:
    """SHA-256 of the stored configuration (canonical JSON): names the exact study file registered."""
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()


def _table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table; a ``|`` inside a cell is escaped so that it stays in its cell."""
    cell = lambda c: str(c).replace("|", "\\|")
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def _design(config: StudyConfig, facts: StudyFacts) -> str:
    comps = lambda cs: ", ".join(f"`{c.name}`" + (f" ({c.options})" if c.options else "") for c in cs)
    lines = [
        "## 1. Design",
        "",
        f"- **Conditions** ({len(facts.conditions)}): every method x segmenter combination: methods "
        f"{comps(config.methods)}; segmenters {comps(config.segmenters)}. Conditions: "
        + ", ".join(f"`{c}`" for c in facts.conditions)
        + ".",
        f"- **Stimuli**: {facts.references} reference products in {facts.categories} categories "
        f"({config.references_per_category} per category"
        + (f", filter {config.reference_filter}" if config.reference_filter else "")
        + f", drawn with seed {config.seed}); for each, the top-{config.k} most similar products of its category by "
        "each condition, shown as a grid. Grids that several conditions produce are shown once.",
        "- **Blinding**: participants never see which condition made a grid (opaque grid ids, positions randomised "
        "per participant); results stay hidden on the admin page until unblinded.",
        "- **Protocols** (within participants, one block each):",
    ]
    for name in config.protocols:
        p = protocol_registry.get_protocol(name)
        lines.append(f"  - `{name}`: {p.asks}")
    lines += [
        f"- **Trials**: {config.trials_per_participant} per protocol per participant, the least-judged units first "
        "(random tie-break), no unit twice for a participant; attention checks at rate "
        f"{config.attention_check_rate:g} per trial; repeat trials at rate {config.repeat_rate:g}; "
        f"{config.comprehension} practice screens before the trials.",
        "- **Participants**: "
        + (f"at most {config.max_participants}" if config.max_participants else "no cap set")
        + f"; a participant without an answer for {config.time_limit_minutes} minutes is timed out.",
    ]
    return "\n".join(lines)


def _hypotheses(config: StudyConfig) -> str:
    lines = ["## 2. Hypotheses", ""]
    p = config.primary
    if p is None:
        lines.append(
            "No primary comparison is declared in the study file (`[primary]`): every test below is confirmatory "
            "only as the omnibus and Holm-corrected family stated; declare one to register a single primary test."
        )
    else:
        alpha = config.stopping.alpha if config.stopping else 0.05
        lines += [
            f"- **Primary**: condition `{p.a}` differs from condition `{p.b}` on the `{p.protocol}` protocol. "
            f"Statistic: {p.statistic}. H0: the mean difference is 0; H1: it is not (two-sided, alpha = {alpha:g}).",
        ]
    lines.append(
        "- **Secondary**: the conditions differ at all (omnibus test of each protocol, below), and which pairs "
        "differ (Holm-corrected family per protocol)."
    )
    return "\n".join(lines)


def _protocol_analyses(config: StudyConfig, name: str) -> list[str]:
    """:data:`ANALYSES` of a protocol; an adaptive pairwise study's Bradley-Terry is Firth's with Wald intervals."""
    if name == "pairwise" and config.pairwise_assignment == "adaptive":
        return [
            ANALYSES["pairwise"][0],
            f"adaptive assignment (floor {config.pairwise_adaptive_floor}): after every pair of conditions is judged "
            f"{config.pairwise_adaptive_floor} time(s), each participant's pairwise units are those where the current "
            "Bradley-Terry fit is least certain (seeded, recorded, replayable); Firth's bias-reduced Bradley-Terry "
            "strengths with 95% Wald intervals",
        ]
    return ANALYSES[name]


def _analyses(config: StudyConfig) -> str:
    lines = ["## 3. Analyses", ""]
    if config.primary is not None:
        lines.append(
            "- **Primary analysis**: one difference per analysed participant (mean on condition a minus mean on "
            "condition b; participants without answers on both are left out), a two-sided one-sample t test of the "
            "mean difference" + (", monitored by the stopping rule of section 6." if config.stopping else ".")
        )
    for name in config.protocols:
        lines.append(f"- **`{name}`**:")
        lines += [f"  - {a}" for a in _protocol_analyses(config, name)]
    lines.append(
        "- Every interval is 95%; bootstrap intervals use 2,000 resamples of participants, seed 0 (`lookalike report`)."
    )
    return "\n".join(lines)


def _exclusions(config: StudyConfig, rules: ExclusionRules) -> str:
    checks = (
        f"more than {rules.failed_checks_max} failed attention check(s)"
        if rules.failed_checks_max is not None
        else "failed attention checks: not an exclusion"
    )
    fast = (
        f"more than {rules.too_fast_max} answers faster than {config.min_response_ms} ms"
        if rules.too_fast_max is not None and config.min_response_ms
        else "answers faster than "
        + (
            f"{config.min_response_ms} ms are flagged, not excluded"
            if config.min_response_ms
            else "a minimum: no rule (min_response_ms = 0)"
        )
    )
    consistency = (
        f"test-retest agreement below {rules.consistency_min:g} on repeat trials"
        if rules.consistency_min is not None
        else "test-retest consistency: reported, not an exclusion"
    )
    return "\n".join([
        "## 4. Exclusions",
        "",
        "Rules apply in this order; a participant is counted under the first that excludes them:",
        "",
        f"1. {checks} (a check fails only on an answer no attentive person gives: rating the unrelated set 4 or more, "
        "choosing it in a pairwise trial or as the most similar set, liking it in a swipe round);",
        f"2. {fast};",
        "3. " + ("not finishing every trial" if rules.require_complete else "unfinished participants are kept") + ";",
        f"4. {consistency}.",
        "",
        "Participants screened out by the practice screens never reach the trials. The participant flow (started, "
        "completed, excluded per rule, analysed) is reported.",
    ])  # fmt: skip


def _cost_cells(c: SizeCost | None) -> list[object]:
    if c is None:
        return ["", "", ""]
    return [
        f"{c.hours_of_participant_time:.1f}",
        "" if c.cost is None else f"{c.cost:,.2f}",
        "" if c.collection_days is None else f"{c.collection_days:.1f}",
    ]


def _power(power: PowerTable | None) -> str:
    lines = ["## 5. Sample size", ""]
    if power is None:
        return "\n".join([*lines, "No power run was given."])
    cost = {c.participants: c for c in power.costs}
    header = ["participants", *power.analyses] + (["participant hours", "cost", "days of collection"] if cost else [])
    rows = [
        [n, *(f"{p:.2f} [{lo:.2f}, {hi:.2f}]" for p, lo, hi in (a[i] for a in power.power))]
        + (_cost_cells(cost.get(n)) if cost else [])
        for i, n in enumerate(power.sizes)
    ]
    lines += [
        f"Power by simulation on this study's design (`{power.protocol}` protocol, pair {power.pair[0]} vs "
        f"{power.pair[1]}; {power.settings}): the share of simulated studies in which each analysis detects the "
        f"difference at alpha = {power.alpha:g}, with Wilson 95% intervals for the Monte Carlo error. Sizes count "
        "analysed participants: recruit enough to cover exclusions.",
        "",
        _table(header, rows),
        "",
    ]
    for what, n in zip(power.analyses, power.needed, strict=True):
        reached = f"from **{n} participants**" if n else "at none of the sizes tried"
        if n and n in cost and cost[n].cost is not None:
            reached += f" (cost {cost[n].cost:,.2f})"
        lines.append(f"- {what}: power >= {power.target:g} {reached}")
    if power.timing is not None:
        t = power.timing
        lines.append(
            f"- Costs: {t.minutes_per_participant:.1f} minutes per participant ({t.source}) x the pay per hour; days "
            "of collection at the arrivals per hour given, around the clock."
        )
    return "\n".join(lines)


def _stopping(config: StudyConfig, power: float, costs: tuple[SizeCost, ...] = ()) -> str:
    rule = config.stopping
    lines = ["## 6. Stopping rule", ""]
    if rule is None:
        return "\n".join([*lines, "None: data collection stops at the planned sample size, analysed once."])
    lines += [f"{rule.describe()[0].upper()}{rule.describe()[1:]}.", ""]
    if rule.rule == "anytime":
        ns = sorted({ANYTIME_MIN, rule.max_participants // 2, rule.max_participants})
        lines += [
            f"The confidence sequence is checked from {ANYTIME_MIN} participants on, up to {rule.max_participants} "
            "(the study then ends). Half-width in standard deviations of the per-participant difference:",
            "",
            _table(
                ["participants", "half-width / SD"],
                [[n, f"{float(cs_half_width(1.0, n, rule.alpha, rule.max_participants)):.3f}"] for n in ns],
            ),
        ]
        return "\n".join(lines)
    t = np.array(rule.looks) / rule.looks[-1]
    bounds = efficacy_bounds(t, rule.alpha, rule.spending)
    cum = spent(rule.spending, t, rule.alpha)
    rows = [[k + 1, n, f"{t[k]:.3f}", f"{cum[k]:.5f}", f"{c:.3f}", f"{2 * stats.norm.sf(c):.5f}"]
            for k, (n, c) in enumerate(zip(rule.looks, bounds, strict=True))]  # fmt: skip
    factor = inflation_factor(t, rule.alpha, rule.spending, power)
    lines += [
        _table(
            [
                "look",
                "analysed participants",
                "information fraction",
                "cumulative alpha spent",
                "boundary |z|",
                "nominal two-sided p",
            ],
            rows,
        ),
        "",
        "- At each look the primary analysis (section 3) gives z (the t statistic's p value as a normal deviate); "
        "the study stops for efficacy at the first look with |z| >= the boundary. Boundaries are computed by "
        "recursive numerical integration of the joint normal distribution of the looks' statistics.",
        f"- The adjusted estimate is reported with the repeated {1 - rule.alpha:.0%} confidence interval of the look "
        "where the study stops (mean +/- t quantile at the boundary x SE).",
        f"- Maximum sample size relative to a single analysis of equal power ({power:.0%}): {factor:.3f}.",
    ]
    most = next((c for c in costs if c.participants == rule.looks[-1]), None)
    if most is not None and most.cost is not None:
        lines.append(f"- At most {most.participants} analysed participants cost {most.cost:,.2f}.")
    if rule.futility_z is not None:
        lines.append(
            f"- Futility (non-binding): at an interim look with |z| < {rule.futility_z:g}, stopping is advised; the "
            "efficacy boundaries do not count on it, so continuing keeps the false-positive rate."
        )
    return "\n".join(lines)


def preregistration(
    config: StudyConfig, facts: StudyFacts, power: PowerTable | None, rules: ExclusionRules, *, generated: str
) -> str:
    """The whole sheet, as Markdown."""
    target = power.target if power is not None else 0.8
    return "\n\n".join([
        f"# Pre-registration: {config.name}",
        f"Generated {generated} by `lookalike preregister` from the study as built; study configuration "
        f"SHA-256 `{fingerprint(config)}`.",
        _design(config, facts),
        _hypotheses(config),
        _analyses(config),
        _exclusions(config, rules),
        _power(power),
        _stopping(config, target, power.costs if power is not None else ()),
        "## 7. Deviations\n\nAny deviation from this plan will be reported with its reason.",
    ]) + "\n"  # fmt: skip
