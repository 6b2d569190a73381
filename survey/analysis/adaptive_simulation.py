"""Simulated pairwise collections, uniform or adaptive (:mod:`survey.participants.adaptive_pairs`), for
validating the adaptive design: how many judgements reach a precision of the Bradley-Terry scores, and
whether their intervals still cover.

The design: ``references`` references, each with one grid per condition (no shared grids), so a unit is
a reference and a pair of conditions; participants arrive one after another and answer
``per_participant`` pairwise units each, planned at their arrival from the answers so far (as the
service plans a participant's trials at the start). Answers follow Bradley-Terry with the true
log-strengths: the left grid is chosen with probability ``sigmoid(s_left - s_right)`` (no ties, so
the true values of the fit are known exactly). Uniform = least judged units first, random tie-break
(:func:`~survey.participants.adaptive_pairs.choose_units` with an unreachable floor).

Each collection ends with both fits of the final answers: the maximum-likelihood strengths with their
Fisher-information standard errors (what a naive analysis reports) and Firth's bias-reduced strengths
with theirs (what an adaptive study reports, :mod:`survey.participants.bradley_terry_firth`); the
precision path after each participant is that of the Firth fit, the fit the choices use.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from survey.analysis.bradley_terry import bradley_terry
from survey.participants.adaptive_pairs import PairUnit, choose_units, fit_ready
from survey.participants.bradley_terry_firth import FirthFit, covariance, firth_fit

UNIFORM_FLOOR = 10**9  # every pair always "below the floor": least judged first, i.e. the uniform design


@dataclass(frozen=True)
class Collection:
    judgements: np.ndarray  # after each participant: judgements so far
    mean_se: np.ndarray  # after each participant: mean standard error of the Firth log-strengths (nan: no fit yet)
    estimate: np.ndarray  # maximum-likelihood centred log-strengths at the end
    std_error: np.ndarray  # their Fisher-information standard errors
    firth: FirthFit  # Firth's bias-reduced fit at the end
    per_participant: np.ndarray  # participants x conditions x conditions: each one's wins


def pair_units(conditions: int, references: int) -> list[PairUnit]:
    """Every reference x pair of conditions, contrast ``e_a - e_b`` (left a, right b)."""
    eye = np.eye(conditions)
    return [
        PairUnit(f"r{r}:{a}-{b}", eye[a] - eye[b])
        for r in range(references)
        for a, b in itertools.combinations(range(conditions), 2)
    ]


def simulate_collection(
    strengths: np.ndarray,
    *,
    participants: int,
    adaptive: bool,
    rng: np.random.Generator,
    references: int = 8,
    per_participant: int = 4,
    floor: int = 4,
) -> Collection:
    """One collection of ``participants`` participants (see the module docstring)."""
    strengths = np.asarray(strengths, dtype=float)
    k = len(strengths)
    units = pair_units(k, references)
    counts: dict[str, int] = {}
    wins = np.zeros((k, k))
    mine = np.zeros((participants, k, k))
    judged, se = np.zeros(participants, dtype=int), np.full(participants, np.nan)
    fit = None
    for p in range(participants):
        plan = choose_units(
            units, wins, counts, per_participant, rng, floor=floor if adaptive else UNIFORM_FLOOR, fit=fit
        )
        for u in (c.unit for c in plan):
            a, b = u.pair
            left_wins = rng.random() < expit(strengths[a] - strengths[b])
            mine[p, a, b] += left_wins
            mine[p, b, a] += not left_wins
            counts[u.key] = counts.get(u.key, 0) + 1
        wins = mine[: p + 1].sum(axis=0)
        judged[p] = int(wins.sum())
        fit = firth_fit(wins) if fit_ready(wins, 1) else None
        if fit is not None:
            se[p] = float(fit.std_error.mean())
    if fit is None:
        raise ValueError(f"{participants} participants left a pair of conditions never compared; simulate more")
    est = bradley_terry(wins)
    return Collection(judged, se, est, np.sqrt(np.diag(covariance(est, wins))), fit, mine)


def judgements_to_reach(c: Collection, precision: float) -> int | None:
    """The judgements after which the mean standard error first fell to ``precision`` (None: never)."""
    hit = np.flatnonzero(c.mean_se <= precision)
    return int(c.judgements[hit[0]]) if len(hit) else None
