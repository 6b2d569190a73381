"""Group-sequential boundaries by alpha spending (Lan and DeMets 1983), computed by recursive numerical
integration of the sequential z-statistics (Armitage, McPherson and Rowe 1969; Jennison and Turnbull 2000,
ch. 19).

The z-statistics Z_1..Z_K of a comparison analysed at information fractions t_1 < .. < t_K = 1 are jointly
normal with Corr(Z_i, Z_j) = sqrt(t_i / t_j) and E Z_k = drift * sqrt(t_k) (drift: the standardised effect
at the full information). A two-sided test with spending function f rejects at the first look k with
|Z_k| >= c_k, where c_k makes the probability under no effect of stopping first at look k equal to
f(t_k) - f(t_{k-1}). Spending functions (two-sided level ``alpha``):

- ``obrien-fleming``: f(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)), spends almost nothing early;
- ``pocock``: f(t) = alpha ln(1 + (e - 1) t), spends evenly.

The density of Z_k on the region where the study continues is carried from look to look on a grid
(Simpson's rule), so probabilities are exact to about 1e-7 whatever the number of looks; tests check them
against scipy's multivariate normal and against published tables.

A futility rule here is *non-binding*: the efficacy boundaries ignore it, so stopping for futility can
only lower the false-positive rate, and a study that continues past a futility signal keeps its level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from survey.study.stopping import SPENDING

_GRID = 401  # Simpson points per interval of the continuation region (odd)
_TAIL = 9.0  # the density beyond drift +/- _TAIL standard deviations is ignored (below 1e-18)


class SequentialDesignError(ValueError):
    pass


def spent(spending: str, t: float | np.ndarray, alpha: float) -> np.ndarray:
    """Cumulative two-sided alpha spent at information fraction(s) ``t`` (0 at 0, ``alpha`` at 1)."""
    t = np.clip(np.asarray(t, float), 0.0, 1.0)
    if spending == "obrien-fleming":
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t)), 0.0)
    if spending == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    raise SequentialDesignError(f"unknown spending function {spending!r}; valid: {', '.join(SPENDING)}")


def _iv(fractions: np.ndarray | list[float] | tuple[float, ...], alpha: float | None = None) -> np.ndarray:
    """The information fractions as an array, checked (and ``alpha``, when given)."""
    t = np.asarray(fractions, float)
    if t.ndim != 1 or len(t) < 1 or not np.all(np.diff(t) > 0) or t[0] <= 0 or not math.isclose(t[-1], 1.0):
        raise SequentialDesignError(f"information fractions must increase from above 0 to 1, got {list(t)}")
    if alpha is not None and not 0 < alpha < 1:
        raise SequentialDesignError(f"alpha must be between 0 and 1, got {alpha}")
    return t


def _simpson(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid points and Simpson weights on [lo, hi]."""
    z = np.linspace(lo, hi, _GRID)
    w = np.ones(_GRID)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return z, w * (hi - lo) / (3 * (_GRID - 1))


@dataclass(frozen=True)
class _Density:
    """The sub-density of Z_k on the continuation region, as grid points and (weight x density) values."""

    z: np.ndarray
    mass: np.ndarray  # Simpson weight x density at z


def _step(prev: _Density | None, t_prev: float, t: float, drift: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of Z_k given each grid point of Z_{k-1} (or unconditionally at look 1)."""
    if prev is None:
        return np.array([drift * math.sqrt(t)]), np.array([1.0])
    d = t - t_prev
    return (prev.z * math.sqrt(t_prev) + drift * d) / math.sqrt(t), np.full(len(prev.z), math.sqrt(d / t))


def _exit(prev: _Density | None, t_prev: float, t: float, drift: float, c: float) -> tuple[float, float]:
    """Probabilities of continuing to look k and then Z_k >= c (upper) or Z_k <= -c (lower)."""
    mean, sd = _step(prev, t_prev, t, drift)
    weight = np.array([1.0]) if prev is None else prev.mass
    return float(weight @ stats.norm.sf((c - mean) / sd)), float(weight @ stats.norm.cdf((-c - mean) / sd))


def _carry(
    prev: _Density | None, t_prev: float, t: float, drift: float, intervals: list[tuple[float, float]]
) -> _Density:
    """The sub-density of Z_k on ``intervals`` (where the study goes on after look k)."""
    mean, sd = _step(prev, t_prev, t, drift)
    weight = np.array([1.0]) if prev is None else prev.mass
    zs, ws = [], []
    centre = drift * math.sqrt(t)
    for lo, hi in intervals:
        lo, hi = max(lo, centre - _TAIL), min(hi, centre + _TAIL)
        if hi > lo:
            z, w = _simpson(lo, hi)
            zs.append(z)
            ws.append(w)
    if not zs:
        return _Density(np.zeros(0), np.zeros(0))
    z, w = np.concatenate(zs), np.concatenate(ws)
    dens = stats.norm.pdf((z[:, None] - mean[None, :]) / sd[None, :]) / sd[None, :] @ weight
    return _Density(z, w * dens)


def _continue(c: float, futility: float | None, sides: int = 2) -> list[tuple[float, float]]:
    """Where the study goes on after a look with boundary ``c`` (and a futility band |z| < futility)."""
    if sides == 1:
        return [(-math.inf, c)]
    if futility is None or futility <= 0:
        return [(-c, c)]
    f = min(futility, c)
    return [(-c, -f), (f, c)]


def efficacy_bounds(
    fractions: np.ndarray | list[float] | tuple[float, ...], alpha: float, spending: str, *, sides: int = 2
) -> np.ndarray:
    """Efficacy boundaries c_1..c_K on the z scale. Two-sided (the default): stop at the first look with
    |Z_k| >= c_k, ``alpha`` the two-sided level spent by f(t; alpha). One-sided (``sides=1``, as gsDesign's
    and rpact's tables): stop when Z_k >= c_k, ``alpha`` the one-sided level spent by f(t; alpha)."""
    t = _iv(fractions, alpha)
    if sides not in (1, 2):
        raise SequentialDesignError(f"sides must be 1 or 2, got {sides}")
    cum = spent(spending, t, alpha)
    bounds: list[float] = []
    prev: _Density | None = None
    t_prev = 0.0

    def excess(c: float, tk: float, target: float) -> float:
        up, low = _exit(prev, t_prev, tk, 0.0, c)
        return up + (low if sides == 2 else 0.0) - target

    for k, tk in enumerate(t):
        target = float(cum[k] - (cum[k - 1] if k else 0.0))
        # nothing to spend at this look: a boundary no statistic reaches
        c = 40.0 if target <= 1e-15 else optimize.brentq(excess, 1e-6, 40.0, args=(tk, target), xtol=1e-10)
        bounds.append(c)
        prev, t_prev = _carry(prev, t_prev, tk, 0.0, _continue(c, None, sides)), tk
    return np.array(bounds)


@dataclass(frozen=True)
class Operating:
    """Operating characteristics of a design at one drift: per look, the probability of stopping there for
    efficacy in the effect's direction (``upper``), in the opposite direction (``lower``), and for futility."""

    upper: np.ndarray
    lower: np.ndarray
    futility: np.ndarray

    @property
    def reject(self) -> float:
        return float(self.upper.sum() + self.lower.sum())

    def expected_fraction(self, fractions: np.ndarray) -> float:
        """Expected information (sample) at stopping, as a fraction of the maximum."""
        stop = self.upper + self.lower + self.futility
        stop[-1] = 1.0 - stop[:-1].sum()
        return float(np.asarray(fractions) @ stop)


def operating(
    fractions: np.ndarray | list[float] | tuple[float, ...],
    bounds: np.ndarray,
    drift: float,
    futility: float | None = None,
) -> Operating:
    """Stopping probabilities per look when the standardised effect at full information is ``drift``; with
    ``futility``, the study stops at an interim look where |Z_k| < futility (the rule followed)."""
    t = _iv(fractions)
    up, low, fut = np.zeros(len(t)), np.zeros(len(t)), np.zeros(len(t))
    prev, t_prev = None, 0.0
    for k, tk in enumerate(t):
        up[k], low[k] = _exit(prev, t_prev, tk, drift, float(bounds[k]))
        if k == len(t) - 1:
            break
        if futility is not None and futility > 0:
            inner = _carry(prev, t_prev, tk, drift, [(-min(futility, bounds[k]), min(futility, bounds[k]))])
            fut[k] = float(inner.mass.sum())
        prev, t_prev = _carry(prev, t_prev, tk, drift, _continue(float(bounds[k]), futility)), tk
    return Operating(up, low, fut)


def drift_for_power(fractions: np.ndarray | list[float] | tuple[float, ...], bounds: np.ndarray, power: float) -> float:
    """The drift at which the design rejects (in the effect's direction) with probability ``power``."""
    return float(optimize.brentq(lambda d: operating(fractions, bounds, d).upper.sum() - power, 0.0, 15.0, xtol=1e-8))


def inflation_factor(
    fractions: np.ndarray | list[float] | tuple[float, ...], alpha: float, spending: str, power: float
) -> float:
    """Maximum sample size of the group-sequential design over the fixed design's, at equal power."""
    fixed = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    drift = drift_for_power(fractions, efficacy_bounds(fractions, alpha, spending), power)
    return float((drift / fixed) ** 2)
