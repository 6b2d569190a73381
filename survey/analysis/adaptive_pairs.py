"""Adaptive pairs: the next pairwise units chosen where the current Bradley-Terry fit is least certain.

A pairwise unit shows two grids of one reference; ``x`` is its condition contrast (the left grid's
condition weights minus the right's; a grid several conditions share weighs each 1 / their number),
so under Bradley-Terry one answer on it carries Fisher information ``w x x'`` with
``w = p (1 - p)``, ``p = sigmoid(x' s)`` at the current log-strengths ``s``.

:func:`choose_units` plans one participant's pairwise block:

1. **floor**: while some pair of conditions has fewer than ``floor`` judgements, units are taken
   least-judged first (the uniform design), so the fit exists and every pair is seen;
2. **adaptive**: then greedily, the unit whose answer would most reduce the summed variance of the
   centred log-strengths (A-optimal design): with ``P`` the pseudo-inverse of the current
   information, ``trace(P) - trace((I + w x x')^+) = w |P x|^2 / (1 + w x' P x)`` (Sherman-Morrison),
   ``P`` updated after each pick, at most once per unit within a block. Ties go to the least judged
   unit, then to a random order (one ``rng.permutation``), so a plan is replayed exactly from the
   same answers and generator state.

Blinding is untouched (units are the study's blinded grid pairs) and so is the counterbalancing of
left and right (the service's :func:`survey.participants.assignment.counterbalanced`).

Why the estimates stay unbiased: the next unit depends only on answers already given, never on the
answer it will get, so the design is ignorable for the likelihood; the maximum-likelihood fit and its
Fisher-information intervals are those of a fixed design with the same units (the likelihood
principle). ``bench/adaptive_pairs.py`` measures both properties: judgements saved and coverage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from survey.analysis.bradley_terry import bradley_terry, bradley_terry_information


@dataclass(frozen=True)
class PairUnit:
    """A pairwise unit: its key (as the service stores it) and its condition contrast ``x``."""

    key: str
    contrast: np.ndarray  # conditions: +weights of the left grid's conditions, -weights of the right's

    @property
    def pair(self) -> tuple[int, int]:
        """The (lowest, highest) index of the conditions it compares (for the floor's counts)."""
        nz = np.flatnonzero(self.contrast)
        return int(nz.min()), int(nz.max())


def strengths_and_covariance(wins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred BT log-strengths of a win matrix and their covariance (pseudo-inverse of the Fisher information)."""
    s = bradley_terry(wins)
    return s, np.linalg.pinv(bradley_terry_information(s, wins))


def choose_units(
    units: Sequence[PairUnit],
    wins: np.ndarray,
    counts: Mapping[str, int],
    n: int,
    rng: np.random.Generator,
    *,
    floor: int = 2,
    fit: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[PairUnit]:
    """``n`` distinct units for one participant (see the module docstring). ``wins``: conditions x
    conditions, wins of the row over the column so far (ties half each way); ``counts``: judgements
    per unit key; ``fit``: :func:`strengths_and_covariance` of ``wins`` when the caller has it. Draws
    ``rng.permutation(len(units))`` once."""
    if n < 0 or floor < 0:
        raise ValueError(f"n and floor must be at least 0, got {n} and {floor}")
    tiebreak = rng.permutation(len(units))
    judged = np.array([counts.get(u.key, 0) for u in units])
    pairs = [u.pair for u in units]
    pair_counts: dict[tuple[int, int], int] = {}
    for pair, c in zip(pairs, judged, strict=True):
        pair_counts[pair] = pair_counts.get(pair, 0) + int(c)
    X = np.array([u.contrast for u in units])
    order = np.lexsort((tiebreak, judged))  # least judged first, then the random tie-break
    free = np.ones(len(units), dtype=bool)
    picked: list[int] = []
    s, P = fit if fit is not None else (None, None)
    while len(picked) < min(n, len(units)):
        left = order[free[order]]
        below = [i for i in left if pair_counts[pairs[i]] < floor]
        if below:  # the uniform floor: the least judged unit of a pair below it
            i = int(below[0])
        else:
            if P is None or s is None:
                s, P = strengths_and_covariance(wins)
            p = expit(X[left] @ s)
            w = p * (1.0 - p)
            PX = X[left] @ P
            gains = w * (PX * PX).sum(axis=1) / (1.0 + w * (X[left] * PX).sum(axis=1))
            best = int(np.argmax(gains))  # first maximum: least judged, then tie-break order
            i = int(left[best])
            P = P - w[best] * np.outer(PX[best], PX[best]) / (1.0 + w[best] * (X[i] @ PX[best]))
        picked.append(i)
        free[i] = False
        pair_counts[pairs[i]] += 1
    return [units[i] for i in picked]
