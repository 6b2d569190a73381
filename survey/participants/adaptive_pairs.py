"""Adaptive pairs: the next pairwise units chosen where the current Bradley-Terry fit is least certain.

A pairwise unit shows two grids of one reference; ``x`` is its condition contrast (the left grid's
condition weights minus the right's; a grid several conditions share weighs each 1 / their number),
so under Bradley-Terry one answer on it carries Fisher information ``w x x'`` with
``w = p (1 - p)``, ``p = sigmoid(x' s)`` at the current log-strengths ``s``.

:func:`choose_units` plans one participant's pairwise block:

1. **floor**: while some pair of conditions that a unit compares has fewer than ``floor`` judgements
   (counted in ``counts``, answered or held), or fewer than ``floor`` answers in ``wins``, units are
   taken least-judged first (the uniform design), so the fit exists and every pair is seen (with
   grids that several conditions share, a unit compares each condition of one grid with each of the
   other's; conditions that always share a grid are never compared, and need not be);
2. **adaptive**: then greedily, the unit whose answer would most reduce the summed variance of the
   centred log-strengths (A-optimal design): with ``P`` the covariance of the current fit (Firth's
   bias-reduced Bradley-Terry, :mod:`survey.participants.bradley_terry_firth`, finite even when a
   condition never lost), ``trace(P) - trace((I + w x x')^+) = w |P x|^2 / (1 + w x' P x)``
   (Sherman-Morrison), ``P`` updated after each pick, at most once per unit within a block. Ties go
   to the least judged unit, then to a random order (one ``rng.permutation``), so a plan is replayed
   exactly from the same answers, counts and generator state.

Blinding is untouched (units are the study's blinded grid pairs) and so is the counterbalancing of
left and right (the service's :func:`survey.participants.assignment.counterbalanced`).

Why the estimates stay valid: the next unit depends only on answers already given, never on the
answer it will get, so the design is ignorable for the likelihood. The maximum-likelihood strengths
still carry their small-sample outward bias, which the adaptive design (comparing the extremes less)
makes larger; an adaptive study therefore reports Firth's fit with Wald intervals, whose coverage
``bench/adaptive_pairs.py`` measures beside the judgements saved.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from survey.participants.bradley_terry_firth import FirthFit, expit, firth_fit


@dataclass(frozen=True)
class PairUnit:
    """A pairwise unit: its key (as the service stores it) and its condition contrast ``x``."""

    key: str
    contrast: np.ndarray  # conditions: +weights of the left grid's conditions, -weights of the right's

    @property
    def pair(self) -> tuple[int, int]:
        """The (lowest, highest) index of the conditions it compares (one of each side when no grid is shared)."""
        nz = np.flatnonzero(self.contrast)
        return int(nz.min()), int(nz.max())

    @property
    def pairs(self) -> frozenset[tuple[int, int]]:
        """Every pair of conditions (lower index first) it compares: one of the left grid's with one of
        the right's (each credited with the answer, as in the win matrix)."""
        left, right = np.flatnonzero(self.contrast > 0), np.flatnonzero(self.contrast < 0)
        return frozenset((int(min(a, b)), int(max(a, b))) for a in left for b in right)


@dataclass(frozen=True)
class Choice:
    """A unit chosen, in which phase, and (adaptive) the reduction of the summed variance it was chosen for."""

    unit: PairUnit
    phase: Literal["floor", "adaptive"]
    gain: float | None  # None in the floor phase


def fit_ready(wins: np.ndarray, floor: int, comparable: Sequence[tuple[int, int]] | None = None) -> bool:
    """Whether every pair of conditions in ``comparable`` (None: every pair) has at least ``floor``
    answers in ``wins`` (ties count once) and those pairs connect all conditions (else no fit puts
    them on one scale)."""
    from scipy.sparse.csgraph import connected_components  # here: a participants-only process loads no scipy

    n = np.asarray(wins, dtype=float)
    k = len(n)
    pairs = list(itertools.combinations(range(k), 2)) if comparable is None else list(comparable)
    linked = np.zeros((k, k), dtype=bool)
    for a, b in pairs:
        linked[a, b] = True
    if k > 1 and connected_components(linked, directed=False)[0] > 1:
        return False
    return all(n[a, b] + n[b, a] >= floor for a, b in pairs)


def choose_units(
    units: Sequence[PairUnit],
    wins: np.ndarray,
    counts: Mapping[str, int],
    n: int,
    rng: np.random.Generator,
    *,
    floor: int = 4,
    fit: FirthFit | None = None,
) -> list[Choice]:
    """``n`` distinct units for one participant (see the module docstring). ``wins``: conditions x
    conditions, wins of the row over the column so far (ties half each way); ``counts``: judgements
    per unit key (answered or held); ``fit``: :func:`~survey.participants.bradley_terry_firth.firth_fit`
    of ``wins`` when the caller has it. Draws ``rng.permutation(len(units))`` once."""
    if n < 0 or floor < 1:
        raise ValueError(
            f"n must be at least 0 and floor at least 1 (the fit needs every pair of conditions compared), "
            f"got {n} and {floor}"
        )
    tiebreak = rng.permutation(len(units))
    judged = np.array([counts.get(u.key, 0) for u in units])
    covers = [u.pairs for u in units]
    pair_counts: dict[tuple[int, int], int] = {}
    for cover, c in zip(covers, judged, strict=True):
        for pair in cover:
            pair_counts[pair] = pair_counts.get(pair, 0) + int(c)
    X = np.array([u.contrast for u in units])
    order = np.lexsort((tiebreak, judged))  # least judged first, then the random tie-break
    free = np.ones(len(units), dtype=bool)
    picked: list[Choice] = []
    ready = fit_ready(wins, floor, sorted(pair_counts))
    P, s = (fit.covariance, fit.strength) if fit is not None else (None, None)
    while len(picked) < min(n, len(units)):
        left = order[free[order]]
        below = [i for i in left if any(pair_counts[pair] < floor for pair in covers[i])]
        if below or not ready:  # the uniform floor: the least judged unit (of a pair below it, if any)
            i = int(below[0] if below else left[0])
            picked.append(Choice(units[i], "floor", None))
        else:
            if P is None or s is None:
                f = firth_fit(wins)
                P, s = f.covariance, f.strength
            p = expit(X[left] @ s)
            w = p * (1.0 - p)
            PX = X[left] @ P
            gains = w * (PX * PX).sum(axis=1) / (1.0 + w * (X[left] * PX).sum(axis=1))
            best = int(np.argmax(gains))  # first maximum: least judged, then tie-break order
            i = int(left[best])
            P = P - w[best] * np.outer(PX[best], PX[best]) / (1.0 + w[best] * (X[i] @ PX[best]))
            picked.append(Choice(units[i], "adaptive", float(gains[best])))
        free[i] = False
        for pair in covers[i]:
            pair_counts[pair] += 1
    return picked
