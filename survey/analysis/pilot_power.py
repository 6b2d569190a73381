"""Power of every protocol from a pilot (``lookalike power --from-pilot``): how many participants the
study's own design needs, given the effects its answers so far show, with their uncertainty.

For each simulated study r, the parameters are drawn once from the pilot's sampling distribution
(:meth:`survey.analysis.pilot_fits.PilotFit.draw`, generator seeded by (seed, r, 1)), so the power is
averaged over what the true effects plausibly are (the "assurance"), not computed at the point
estimate, which would overstate it whenever the pilot's effect is lucky. With those parameters, a
study of each size is simulated on the design (generator (seed, n, r)) and analysed with the
report's functions for the protocol; an analysis detects the pair when it rejects at ``alpha`` in the
direction of the drawn true difference:

* rating (:func:`survey.analysis.simulate.simulate_judgements`): the Friedman test (omnibus), the pair's
  Holm-corrected Wilcoxon test, and the pair's Wald z test in the crossed-intercepts mixed model
  (per-condition coding: the report's method x segmenter model reparameterised);
* pairwise: the pair's Bradley-Terry log-strength difference (participant-bootstrap percentile
  interval excluding 0) and its direct win rate (exact sign test, ties left out);
* ranking: the pair's best-worst score difference and Plackett-Luce log-strength difference
  (participant-bootstrap percentile intervals excluding 0);
* swipe (:mod:`survey.analysis.swipe_simulation`, the drawn log odds ratios as shifts): the like model's
  joint test (omnibus) and the pair's Holm-corrected Wilcoxon test of like rates.

Power is the share of detecting studies with a Wilson 95 % interval (Monte Carlo error).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from survey.analysis.bradley_terry import bradley_terry_replicates, win_tie_loss
from survey.analysis.mixed_model import fit_crossed_intercepts
from survey.analysis.pilot_fits import PilotFit, rating_design
from survey.analysis.plackett_luce import best_worst_counts, plackett_luce_replicates
from survey.analysis.power import detection_rate, fewest_reaching, studies_by_size
from survey.analysis.ratings import friedman, pairwise_wilcoxon
from survey.analysis.response_model import ResponseModel, SimulationError
from survey.analysis.results import nan_to_none
from survey.analysis.simulate_tables import Design, simulate_judgements

#: analysis name -> (what it tests, detects(data, pair, truth, alpha, rng, n_boot) -> bool)
Detector = Callable[[pd.DataFrame, tuple[str, str], float, float, np.random.Generator, int], bool]


def _direction(p: float, diff: float, truth: float, alpha: float) -> bool:
    return bool(p < alpha and np.sign(diff) == np.sign(truth))


def _friedman(j, pair, truth, alpha, rng, n_boot) -> bool:
    return bool(friedman(j).pvalue < alpha)  # nan (too few complete blocks): not rejected


def _wilcoxon(j, pair, truth, alpha, rng, n_boot) -> bool:
    a, b = pair
    for w in pairwise_wilcoxon(j):
        if {w.a, w.b} == {a, b}:
            return _direction(w.pvalue_holm, w.median_difference if w.a == a else -w.median_difference, truth, alpha)
    return False


def _mixed(j, pair, truth, alpha, rng, n_boot) -> bool:
    try:
        conds, X, y, participant, reference = rating_design(j)
    except SimulationError:  # a condition not separable in this small study: no test
        return False
    fit = fit_crossed_intercepts(X, y, participant, reference)
    a, b = conds.index(pair[0]), conds.index(pair[1])
    c = np.zeros(len(conds))
    c[a], c[b] = 1.0, -1.0
    diff, se = float(c @ fit.beta), float(np.sqrt(c @ fit.cov @ c))
    return _direction(2 * stats.norm.sf(abs(diff) / se), diff, truth, alpha)


def _percentile_excludes_zero(est: float, boots: np.ndarray, truth: float, alpha: float) -> bool:
    lo, hi = np.nanquantile(boots, [alpha / 2, 1 - alpha / 2])
    return bool((lo > 0 or hi < 0) and np.sign(est) == np.sign(truth))


def _bradley_terry(j, pair, truth, alpha, rng, n_boot) -> bool:
    conds, est, boots = bradley_terry_replicates(j, n_boot=n_boot, rng=rng)
    if not set(pair) <= set(conds):
        return False
    a, b = conds.index(pair[0]), conds.index(pair[1])
    return _percentile_excludes_zero(est[a] - est[b], boots[:, a] - boots[:, b], truth, alpha)


def _win_rate(j, pair, truth, alpha, rng, n_boot) -> bool:
    for w in win_tie_loss(j):
        if (w.a, w.b) == pair and w.wins + w.losses > 0:
            p = stats.binomtest(w.wins, w.wins + w.losses).pvalue
            return _direction(p, w.wins - w.losses, truth, alpha)
    return False


def _best_worst(j, pair, truth, alpha, rng, n_boot) -> bool:
    counts = best_worst_counts(j)
    if counts is None or not set(pair) <= set(counts[0].columns):
        return False
    shown, best, worst = (m[list(pair)].to_numpy(float) for m in counts)
    w = rng.multinomial(len(shown), np.full(len(shown), 1.0 / len(shown)), size=n_boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (w @ best - w @ worst) / (w @ shown)
    est = (best.sum(0) - worst.sum(0)) / shown.sum(0)
    return _percentile_excludes_zero(est[0] - est[1], score[:, 0] - score[:, 1], truth, alpha)


def _plackett_luce(j, pair, truth, alpha, rng, n_boot) -> bool:
    conds, est, boots = plackett_luce_replicates(j, n_boot=n_boot, rng=rng)
    if boots is None or not set(pair) <= set(conds):
        return False
    a, b = conds.index(pair[0]), conds.index(pair[1])
    return _percentile_excludes_zero(est[a] - est[b], boots[:, a] - boots[:, b], truth, alpha)


def _swipe_model(s, pair, truth, alpha, rng, n_boot) -> bool:
    from survey.analysis.swipe_power import swipe_rejects

    return swipe_rejects(s, pair, truth, alpha)[0]


def _swipe_pair(s, pair, truth, alpha, rng, n_boot) -> bool:
    from survey.analysis.swipe_power import swipe_rejects

    return swipe_rejects(s, pair, truth, alpha)[1]


#: Per protocol, its analyses: (name, what is tested, detector).
ANALYSES: dict[str, tuple[tuple[str, str, Detector], ...]] = {
    "rating": (
        ("friedman", "Friedman test over conditions (omnibus)", _friedman),
        ("wilcoxon_holm", "the pair's Holm-corrected Wilcoxon signed-rank test", _wilcoxon),
        ("mixed_model", "the pair's Wald z test in the crossed-intercepts mixed model", _mixed),
    ),
    "pairwise": (
        ("bradley_terry", "the pair's Bradley-Terry difference, participant-bootstrap interval", _bradley_terry),
        ("win_rate", "the pair's direct win rate, exact sign test (ties left out)", _win_rate),
    ),
    "ranking": (
        ("best_worst", "the pair's best-worst score difference, participant-bootstrap interval", _best_worst),
        ("plackett_luce", "the pair's Plackett-Luce difference, participant-bootstrap interval", _plackett_luce),
    ),
    "swipe": (
        ("like_model", "the like model's joint test of no difference (omnibus)", _swipe_model),
        ("wilcoxon_holm", "the pair's Holm-corrected Wilcoxon test of like rates", _swipe_pair),
    ),
}


@dataclass(frozen=True)
class PowerAt:
    participants: int
    power: float
    ci_low: float  # Wilson 95 % interval (Monte Carlo error)
    ci_high: float


@dataclass(frozen=True)
class AnalysisPower:
    analysis: str
    tests: str
    points: list[PowerAt]
    needed: int | None  # fewest participants tried with power >= target (None: none reached it)


@dataclass(frozen=True)
class ProtocolPower:
    protocol: str
    pair: tuple[str, str]
    pilot: dict
    analyses: list[AnalysisPower]

    def to_json(self) -> dict:
        return nan_to_none(asdict(self))


def default_pilot_pair(fit: PilotFit) -> tuple[str, str]:
    """The condition with the largest estimated effect against the one with the smallest."""
    order = np.argsort(fit.effects, kind="stable")
    return fit.conditions[int(order[-1])], fit.conditions[int(order[0])]


def pilot_power(
    fit: PilotFit,
    simulate: Callable[[dict[str, float], dict[str, float], int, np.random.Generator], pd.DataFrame],
    participants: Sequence[int],
    *,
    pair: tuple[str, str] | None = None,
    reps: int = 50,
    alpha: float = 0.05,
    target: float = 0.8,
    seed: int = 0,
    n_boot: int = 200,
) -> ProtocolPower:
    """Power of ``fit.protocol``'s analyses at each size: ``simulate(effects, extra, n, rng)`` gives one
    simulated study's data with drawn parameters (:func:`grid_simulator`, :func:`swipe_simulator`)."""
    if not participants or any(n < 2 for n in participants) or reps < 1 or n_boot < 10:
        raise SimulationError("participants must be numbers of at least 2, reps at least 1, bootstrap at least 10")
    if not 0 < alpha < 1 or not 0 < target < 1:
        raise SimulationError("alpha and target must lie between 0 and 1")
    pair = pair or default_pilot_pair(fit)
    if len(set(pair)) != 2 or set(pair) - set(fit.conditions):
        raise SimulationError(f"pair must name two different conditions of the study; valid: {list(fit.conditions)}")
    analyses = ANALYSES[fit.protocol]

    def study(n: int, r: int) -> list[bool]:
        effects, extra = fit.draw(np.random.default_rng([seed, r, 1]))  # the same draw for every size
        rng = np.random.default_rng([seed, n, r])
        data = simulate(effects, extra, n, rng)
        truth = effects[pair[0]] - effects[pair[1]]
        return [detects(data, pair, truth, alpha, rng, n_boot) for _, _, detects in analyses]

    studies = studies_by_size(participants, reps, study)
    out = []
    for k, (name, tests, _) in enumerate(analyses):
        points = [PowerAt(n, *detection_rate(s[:, k])) for n, s in studies.items()]
        out.append(
            AnalysisPower(name, tests, points, fewest_reaching(((p.participants, p.power) for p in points), target))
        )
    return ProtocolPower(fit.protocol, pair, fit.to_json(), out)


def grid_simulator(design: Design, fit: PilotFit):
    """Simulated judgements of ``fit.protocol`` on ``design`` with the drawn effects (and, for rating,
    the drawn noise and bias; for pairwise, the drawn tie margin; otherwise unit noise)."""

    def simulate(effects: dict[str, float], extra: dict[str, float], n: int, rng: np.random.Generator) -> pd.DataFrame:
        model = ResponseModel(
            effects=effects,
            noise_sd=float(np.exp(extra.get("log_noise_sd", 0.0))),
            bias_sd=float(np.exp(extra["log_bias_sd"])) if "log_bias_sd" in extra else 0.0,
            tie_margin=float(np.exp(extra["log_tie_margin"])) if "log_tie_margin" in extra else 0.25,
        )
        return simulate_judgements(design, n, protocol=fit.protocol, model=model, rng=rng)

    return simulate


def swipe_simulator(design, *, seed: int):
    """Simulated swipes on the study's swipe design with the drawn log odds ratios as shifts (the
    simulated catalog drawn once, from ``seed``)."""
    from survey.analysis.swipe_power import swipe_world
    from survey.analysis.swipe_simulation import SwipeModel, simulate_swipes

    world = swipe_world(design, seed=seed)

    def simulate(effects: dict[str, float], extra: dict[str, float], n: int, rng: np.random.Generator) -> pd.DataFrame:
        model = SwipeModel(shifts=effects, max_swipes=design.max_swipes, check_rate=design.check_rate)
        return simulate_swipes(world, model, n, rng=rng).swipes

    return simulate
