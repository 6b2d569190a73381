"""The stopping rules of :mod:`survey.analysis.sequential` on many simulated studies at once: the
false-positive rate when the conditions do not differ, the power and the average number of participants
when they do, beside naive repeated testing and the fixed design (``bench/sequential.py``, tests).

A simulated study is a sequence of per-participant differences, normal with mean ``effect`` and standard
deviation 1 (``effect`` is then the standardised difference), or, with ``data="ratings"``, each
participant's mean of three 1-7 ratings of condition a minus three of b, from a latent normal with a
participant bias (discrete, bounded data). Every rule uses the same functions as the monitor
(boundaries, paired z, confidence-sequence width), applied to all studies as arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from survey.analysis.group_sequential import efficacy_bounds
from survey.analysis.sequential import ANYTIME_MIN, cs_half_width, paired_z
from survey.study.stopping import StoppingRule

DATA = ("normal", "ratings")


@dataclass(frozen=True)
class RuleOutcome:
    """How often a rule rejected no difference, with a 95% Clopper-Pearson interval, and at what size."""

    rule: str
    effect: float
    studies: int
    rejections: int
    rate: float
    ci_low: float
    ci_high: float
    mean_participants: float
    max_participants: int
    futility_stops: int = 0


def _outcome(rule: str, effect: float, reject: np.ndarray, used: np.ndarray, n_max: int, fut: int = 0) -> RuleOutcome:
    ci = stats.binomtest(int(reject.sum()), len(reject)).proportion_ci(0.95, method="exact")
    return RuleOutcome(
        rule, effect, len(reject), int(reject.sum()), float(reject.mean()), float(ci.low), float(ci.high),
        float(used.mean()), n_max, fut,
    )  # fmt: skip


def differences(studies: int, n: int, effect: float, rng: np.random.Generator, data: str = "normal") -> np.ndarray:
    """``studies`` x ``n`` per-participant differences (see the module docstring)."""
    if data == "normal":
        return rng.normal(effect, 1.0, (studies, n))
    if data == "ratings":  # latent 4 + bias + condition + noise, rounded into 1..7, three ratings per condition
        bias = rng.normal(0, 0.7, (studies, n, 1))
        a = np.clip(np.rint(4 + bias + effect + rng.normal(0, 1.2, (studies, n, 3))), 1, 7).mean(axis=2)
        b = np.clip(np.rint(4 + bias + rng.normal(0, 1.2, (studies, n, 3))), 1, 7).mean(axis=2)
        return a - b
    raise ValueError(f"data must be one of {DATA}, got {data!r}")


def _running(d: np.ndarray, ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the first n columns of ``d``, for each n in ``ns``."""
    s1, s2 = np.cumsum(d, axis=1)[:, ns - 1], np.cumsum(d**2, axis=1)[:, ns - 1]
    mean = s1 / ns
    var = np.maximum(s2 - ns * mean**2, 0.0) / (ns - 1)
    return mean, np.sqrt(var)


def group_sequential(d: np.ndarray, rule: StoppingRule, *, follow_futility: bool = True) -> RuleOutcome:
    """The group-sequential rule on every row of ``d``; futility stops followed unless told otherwise."""
    looks = np.array(rule.looks)
    bounds = efficacy_bounds(looks / looks[-1], rule.alpha, rule.spending)
    mean, sd = _running(d, looks)
    z = np.abs(paired_z(mean, sd, looks))
    cross = z >= bounds
    stop = cross.copy()
    if follow_futility and rule.futility_z is not None:
        stop[:, :-1] |= z[:, :-1] < rule.futility_z
    stop[:, -1] = True
    first = stop.argmax(axis=1)
    reject = cross[np.arange(len(d)), first]
    name = f"group-sequential {rule.spending}, looks {list(rule.looks)}"
    if rule.futility_z is not None:
        name += f", futility |z| < {rule.futility_z:g} {'followed' if follow_futility else 'ignored'}"
    fut = int((~reject & (first < len(looks) - 1)).sum())
    return _outcome(name, float(d.mean()), reject, looks[first], int(looks[-1]), fut)


def naive_looks(d: np.ndarray, looks: tuple[int, ...], alpha: float) -> RuleOutcome:
    """A fixed-sample test at level ``alpha`` repeated at every look, stopping at the first p < alpha."""
    ns = np.array(looks)
    mean, sd = _running(d, ns)
    cross = np.abs(paired_z(mean, sd, ns)) >= stats.norm.isf(alpha / 2)
    first = np.where(cross.any(axis=1), cross.argmax(axis=1), len(ns) - 1)
    return _outcome(f"naive: p < {alpha:g} at each of looks {list(looks)}", float(d.mean()), cross.any(axis=1),
                    ns[first], int(ns[-1]))  # fmt: skip


def anytime(d: np.ndarray, rule: StoppingRule) -> RuleOutcome:
    """The confidence sequence after every participant from :data:`ANYTIME_MIN` to the planned size."""
    n_max = rule.max_participants
    ns = np.arange(ANYTIME_MIN, n_max + 1)
    mean, sd = _running(d[:, :n_max], ns)
    cross = (np.abs(mean) > cs_half_width(sd, ns, rule.alpha, n_max)) & (sd > 0)
    reject = cross.any(axis=1)
    used = np.where(reject, ns[cross.argmax(axis=1)], n_max)
    return _outcome(f"anytime confidence sequence, every participant {ANYTIME_MIN}..{n_max}", float(d.mean()),
                    reject, used, n_max)  # fmt: skip


def naive_every(d: np.ndarray, n_max: int, alpha: float) -> RuleOutcome:
    """A fixed-sample test at level ``alpha`` after every participant from :data:`ANYTIME_MIN` to ``n_max``."""
    ns = np.arange(ANYTIME_MIN, n_max + 1)
    mean, sd = _running(d[:, :n_max], ns)
    cross = np.abs(paired_z(mean, sd, ns)) >= stats.norm.isf(alpha / 2)
    reject = cross.any(axis=1)
    used = np.where(reject, ns[cross.argmax(axis=1)], n_max)
    return _outcome(f"naive: p < {alpha:g} after every participant {ANYTIME_MIN}..{n_max}", float(d.mean()),
                    reject, used, n_max)  # fmt: skip


def fixed(d: np.ndarray, n: int, alpha: float) -> RuleOutcome:
    """One paired t test at ``n`` participants."""
    mean, sd = _running(d[:, :n], np.array([n]))
    reject = np.abs(paired_z(mean, sd, n))[:, 0] >= stats.norm.isf(alpha / 2)
    return _outcome(f"fixed design, {n} participants", float(d.mean()), reject, np.full(len(d), n), n)


def fixed_size(effect: float, alpha: float, power: float) -> int:
    """Participants a fixed paired t test needs for ``power`` at standardised ``effect`` (noncentral t)."""
    for n in range(3, 100_000):
        crit = stats.t.isf(alpha / 2, n - 1)
        if stats.nct.sf(crit, n - 1, effect * math.sqrt(n)) >= power:
            return n
    raise ValueError(f"effect {effect} needs more than 100,000 participants")
