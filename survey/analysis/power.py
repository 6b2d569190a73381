"""Power analysis by simulation: how many participants a rating study needs to detect given
condition differences.

For each number of participants, ``reps`` studies are simulated with the response model of
:mod:`survey.analysis.simulate` (:func:`survey.analysis.simulate.simulate_judgements`: the same latent-to-answer
functions as the service-path simulation, written straight into the tidy judgements table)
on the study's design (its grids, references and trials per participant, least-judged-first
assignment), and analysed with the same functions as the report:

* omnibus: the Friedman test over conditions (:func:`survey.analysis.ratings.friedman`, reference blocks);
* the chosen pair: the Holm-corrected Wilcoxon signed-rank test of that pair among all pairs
  (:func:`survey.analysis.ratings.pairwise_wilcoxon`), counted only when the difference points the true
  way (any rejection counts when the true difference is 0).

Power is the share of simulated studies that reject at ``alpha``, with a Wilson 95% interval
for its Monte Carlo error. Participants are those recruited: with ``dropout``, that share of them
stops part-way (their answers so far analysed, the rest of their trials given to later
participants, :func:`survey.analysis.simulate.plan_participants`), so the participants needed
grow with dropout. The fast simulation has no attention checks, so recruit enough extra people
to cover exclusions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from survey.analysis.ratings import friedman, pairwise_wilcoxon
from survey.analysis.results import nan_to_none
from survey.analysis.simulate import Design, ResponseModel, SimulationError, simulate_judgements


@dataclass(frozen=True)
class PowerPoint:
    participants: int
    reps: int
    friedman_power: float  # share of simulated studies where the Friedman test rejects at alpha
    friedman_ci_low: float  # Wilson 95% interval of that share (Monte Carlo error)
    friedman_ci_high: float
    pair_power: float  # share where the chosen pair differs (Holm-corrected, in the true direction)
    pair_ci_low: float
    pair_ci_high: float
    complete_blocks: float  # mean number of references with every condition rated (Friedman blocks)


@dataclass(frozen=True)
class PowerResult:
    effects: dict[str, float]
    pair: tuple[str, str]
    alpha: float
    target: float
    reps: int
    seed: int
    noise_sd: float
    bias_sd: float
    dropout: float
    conditions: int
    references: int
    trials_per_participant: int
    points: list[PowerPoint]
    friedman_needed: int | None  # fewest participants tried with power >= target (None: none reached it)
    pair_needed: int | None

    def to_json(self) -> dict:
        return nan_to_none(dataclasses.asdict(self))


def default_pair(conditions: Sequence[str], effects: dict[str, float]) -> tuple[str, str]:
    """The condition with the largest true effect against the one with the smallest (unnamed: 0);
    ties go to the alphabetically first. Without any difference: the first two conditions."""
    conds = sorted(conditions)
    if len(conds) < 2:
        raise SimulationError("a power analysis needs at least two conditions")
    eff = {c: effects.get(c, 0.0) for c in conds}
    hi = min(conds, key=lambda c: (-eff[c], c))
    lo = min((c for c in conds if c != hi), key=lambda c: (eff[c], c))
    return hi, lo


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson 95% interval of ``k`` successes in ``n`` trials (NaN for none)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def studies_by_size(
    participants: Sequence[int], reps: int, study: Callable[[int, int], Sequence[float]]
) -> dict[int, np.ndarray]:
    """The simulation loop of every power analysis: ``study(n, r)`` is simulated study r with n
    participants, analysed (its outcomes: a rejection as a bool, or any number per study); returns,
    for each distinct size in increasing order, a (reps x outcomes) array of them."""
    return {n: np.array([study(n, r) for r in range(reps)], dtype=float) for n in sorted(set(participants))}


def detection_rate(hits: np.ndarray) -> tuple[float, float, float]:
    """The share of simulated studies that detect (``hits``: one 0/1 per study) and its Wilson 95%
    interval (Monte Carlo error)."""
    k, n = int(hits.sum()), len(hits)
    return k / n, *wilson(k, n)


def fewest_reaching(power_by_size: Iterable[tuple[int, float]], target: float) -> int | None:
    """The fewest participants tried whose power reaches ``target`` (None: no size did)."""
    return next((n for n, power in sorted(power_by_size) if power >= target), None)


def rating_study(
    design: Design,
    participants: int,
    rep: int,
    *,
    model: ResponseModel,
    pair: tuple[str, str],
    alpha: float,
    seed: int,
    dropout: float = 0.0,
) -> tuple[bool, bool, int]:
    """Simulated rating study ``rep`` with ``participants``: (Friedman rejects, pair detected, complete
    blocks). It uses the generator seeded by (seed, participants, rep), so results per size do not
    depend on which other sizes are tried."""
    a, b = pair
    truth = model.effects.get(a, 0.0) - model.effects.get(b, 0.0)
    j = simulate_judgements(
        design,
        participants,
        protocol="rating",
        model=model,
        rng=np.random.default_rng([seed, participants, rep]),
        dropout=dropout,
    )
    fr = friedman(j)
    omnibus = bool(fr.pvalue < alpha)  # nan (too few complete blocks): not rejected
    paired = False
    lo, hi = sorted(pair)
    for w in pairwise_wilcoxon(j):
        if (w.a, w.b) == (lo, hi):
            diff = w.median_difference if a == lo else -w.median_difference
            paired = bool(w.pvalue_holm < alpha and (truth == 0 or np.sign(diff) == np.sign(truth)))
    return omnibus, paired, fr.n_blocks


def power_curve(
    design: Design,
    participants: Sequence[int],
    *,
    model: ResponseModel = ResponseModel(),
    pair: tuple[str, str] | None = None,
    reps: int = 50,
    alpha: float = 0.05,
    target: float = 0.8,
    seed: int = 0,
    dropout: float = 0.0,
) -> PowerResult:
    """Estimated power of the rating analysis for each number of participants."""
    conds = design.conditions
    pair = _checked_arguments(conds, participants, model, pair, reps=reps, alpha=alpha, target=target, dropout=dropout)
    studies = studies_by_size(
        participants,
        reps,
        lambda n, r: rating_study(design, n, r, model=model, pair=pair, alpha=alpha, seed=seed, dropout=dropout),
    )
    points = [
        PowerPoint(n, reps, *detection_rate(s[:, 0]), *detection_rate(s[:, 1]), float(s[:, 2].mean()))
        for n, s in studies.items()
    ]
    return PowerResult(
        dict(model.effects),
        (pair[0], pair[1]),
        alpha,
        target,
        reps,
        seed,
        model.noise_sd,
        model.bias_sd,
        dropout,
        len(conds),
        int(design.grids["reference"].nunique()),
        design.trials_per_participant,
        points,
        fewest_reaching(((p.participants, p.friedman_power) for p in points), target),
        fewest_reaching(((p.participants, p.pair_power) for p in points), target),
    )


def _checked_arguments(
    conds: list[str],
    participants: Sequence[int],
    model: ResponseModel,
    pair: tuple[str, str] | None,
    *,
    reps: int,
    alpha: float,
    target: float,
    dropout: float,
) -> tuple[str, str]:
    """Raise :class:`SimulationError` naming the first argument of :func:`power_curve` out of range; returns
    the pair to detect (by default the largest true effect against the smallest)."""
    if not participants or any(n < 1 for n in participants):
        raise SimulationError("participants must be a list of positive numbers, e.g. 10,20,40")
    if reps < 1:
        raise SimulationError("reps must be at least 1")
    if not 0 <= dropout < 1:
        raise SimulationError(f"dropout must be a probability from 0 to below 1, got {dropout}")
    if not 0 < alpha < 1 or not 0 < target < 1:
        raise SimulationError("alpha and target must lie between 0 and 1")
    unknown = set(model.effects) - set(conds)
    if unknown:
        raise SimulationError(f"effects name condition(s) {sorted(unknown)} not in the study; valid: {conds}")
    pair = pair or default_pair(conds, model.effects)
    if len(set(pair)) != 2 or set(pair) - set(conds):
        raise SimulationError(f"pair must name two different conditions of the study; valid: {conds}")
    return pair
