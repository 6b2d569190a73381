"""Adaptive pairs (survey.participants.adaptive_pairs): the pick is the A-optimal one (checked by brute force),
the floor comes first, a plan replays from the same answers and seed, and over simulated collections
the adaptive allocation is more informative than uniform while its intervals (Firth's fit,
Wald) still cover (bench/adaptive_pairs.py measures both at scale)."""

from __future__ import annotations

import numpy as np
import pytest

from survey.analysis.adaptive_simulation import pair_units, simulate_collection
from survey.participants.adaptive_pairs import choose_units
from survey.participants.bradley_terry_firth import covariance, firth_bradley_terry, information

STRENGTHS = np.array([0.0, 0.5, 1.0, 2.0])


def _wins(rng, n=200):
    wins = np.zeros((4, 4))
    for _ in range(n):
        a, b = rng.choice(4, 2, replace=False)
        won = rng.random() < 1 / (1 + np.exp(STRENGTHS[b] - STRENGTHS[a]))
        wins[a, b] += won
        wins[b, a] += not won
    return wins


def test_the_adaptive_pick_most_reduces_the_summed_variance():
    rng = np.random.default_rng(0)
    wins = _wins(rng)
    units = pair_units(4, 1)
    counts = {u.key: 5 for u in units}  # every pair above the floor
    choice = choose_units(units, wins, counts, 1, np.random.default_rng(1))[0]
    first = choice.unit
    s = firth_bradley_terry(wins)
    info = information(s, wins)

    def after(u):  # the summed variance of the centred strengths after one more answer on u
        p = 1 / (1 + np.exp(-u.contrast @ s))
        return np.trace(np.linalg.pinv(info + p * (1 - p) * np.outer(u.contrast, u.contrast)))

    assert after(first) == pytest.approx(min(after(u) for u in units))
    assert choice.phase == "adaptive"
    assert choice.gain == pytest.approx(np.trace(covariance(s, wins)) - after(first))
    assert first.pair != (0, 3)  # the most lopsided pair carries the least information


def test_the_floor_comes_first_and_a_plan_replays():
    units = pair_units(4, 2)
    wins = np.zeros((4, 4))
    plan = choose_units(units, wins, {}, 6, np.random.default_rng(3), floor=1)
    assert sorted(c.unit.pair for c in plan) == sorted({u.pair for u in units})  # each pair once: the floor
    assert {c.phase for c in plan} == {"floor"} and {c.gain for c in plan} == {None}
    again = choose_units(units, wins, {}, 6, np.random.default_rng(3), floor=1)
    assert [c.unit.key for c in again] == [c.unit.key for c in plan]
    w = _wins(np.random.default_rng(2))
    counts = {u.key: 3 for u in units}
    a = [c.unit.key for c in choose_units(units, w, counts, 4, np.random.default_rng(9))]
    assert a == [c.unit.key for c in choose_units(units, w, counts, 4, np.random.default_rng(9))]
    assert len(set(a)) == 4
    # counts at the floor but answers below it (units held by participants still answering): no fit yet
    few = np.zeros((4, 4))
    few[0, 1] = few[2, 3] = 1
    assert {c.phase for c in choose_units(units, few, counts, 4, np.random.default_rng(9))} == {"floor"}
    with pytest.raises(ValueError, match="at least 0 and floor at least 1"):
        choose_units(units, w, counts, -1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="floor at least 1"):
        choose_units(units, w, counts, 2, np.random.default_rng(0), floor=0)


def test_adaptive_collections_are_more_informative_and_still_cover():
    """15 collections of 40 participants each: the adaptive allocation's summed variance at the true
    strengths is below uniform's, and the Wald intervals of the adaptive Firth fits cover (60 intervals:
    0.95 - 3 binomial SD = 0.87)."""
    truth = STRENGTHS - STRENGTHS.mean()
    variance = {False: [], True: []}
    covered = []
    for r in range(15):
        for adaptive in (False, True):
            c = simulate_collection(
                STRENGTHS, participants=40, adaptive=adaptive, rng=np.random.default_rng([r, adaptive])
            )
            n = c.per_participant.sum(axis=0)
            variance[adaptive].append(np.trace(covariance(STRENGTHS, n)))
            if adaptive:
                covered.extend(np.abs(c.firth.strength - truth) <= 1.959964 * c.firth.std_error)
    assert np.mean(variance[True]) < np.mean(variance[False])
    assert np.mean(covered) >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / len(covered))
