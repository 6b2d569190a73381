"""Simulated pairwise collections, uniform or adaptive (:mod:`survey.analysis.adaptive_pairs`), for
validating the adaptive design: how many judgements reach a precision of the Bradley-Terry scores, and
whether their intervals still cover.

The design: ``references`` references, each with one grid per condition (no shared grids), so a unit is
a reference and a pair of conditions; participants arrive one after another and answer
``per_participant`` pairwise units each, planned at their arrival from the answers so far (as the
service plans a participant's trials at the start). Answers follow Bradley-Terry with the true
log-strengths: the left grid is chosen with probability ``sigmoid(s_left - s_right)`` (no ties, so
the true values of the fit are known exactly). Uniform = least judged units first, random tie-break
(:func:`~survey.analysis.adaptive_pairs.choose_units` with an unreachable floor).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from survey.analysis.adaptive_pairs import PairUnit, choose_units, strengths_and_covariance

UNIFORM_FLOOR = 10**9  # every pair always "below the floor": least judged first, i.e. the uniform design


@dataclass(frozen=True)
class Collection:
    judgements: np.ndarray  # after each participant: judgements so far
    mean_se: np.ndarray  # after each participant: mean standard error of the centred log-strengths
    estimate: np.ndarray  # centred log-strengths at the end
    std_error: np.ndarray  # their Fisher-information standard errors
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
    floor: int = 2,
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
        for u in plan:
            a, b = u.pair
            left_wins = rng.random() < expit(strengths[a] - strengths[b])
            mine[p, a, b] += left_wins
            mine[p, b, a] += not left_wins
            counts[u.key] = counts.get(u.key, 0) + 1
        wins = mine[: p + 1].sum(axis=0)
        judged[p] = int(wins.sum())
        fit = strengths_and_covariance(wins) if _connected(wins) else None
        if fit is not None:
            se[p] = float(np.sqrt(np.diag(fit[1])).mean())
    est, cov = strengths_and_covariance(wins)
    return Collection(judged, se, est, np.sqrt(np.diag(cov)), mine)


def _connected(wins: np.ndarray) -> bool:
    """Whether every condition has won and lost at least once (else its MLE is infinite)."""
    return bool((wins.sum(axis=1) > 0).all() and (wins.sum(axis=0) > 0).all())


def judgements_to_reach(c: Collection, precision: float) -> int | None:
    """The judgements after which the mean standard error first fell to ``precision`` (None: never)."""
    hit = np.flatnonzero(c.mean_se <= precision)
    return int(c.judgements[hit[0]]) if len(hit) else None
