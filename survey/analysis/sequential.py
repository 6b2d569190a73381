"""Monitoring a study's primary comparison with a stopping rule (``[primary]`` and ``[stopping]`` in the
study TOML, :mod:`survey.study.stopping`).

The data are one number per analysed participant, in the order they finished: the difference between
condition a and condition b on the protocol's primary statistic (e.g. their mean rating of a minus b).
The comparison is a two-sided one-sample test of the mean difference.

- ``group-sequential``: at look k (the first n_k analysed participants; those with answers on both
  conditions enter) the paired t statistic is turned into a z value with the same p value
  (z = Phi^-1(F_t(t; m - 1)); Jennison and Turnbull 2000, sec. 3.8) and compared with the Lan-DeMets
  boundary c_k (:mod:`survey.analysis.group_sequential`). The adjusted interval is the *repeated
  confidence interval* mean +/- t_{m-1}^-1(Phi(c_k)) SE: the intervals of all looks cover the true
  difference together with probability 1 - alpha, so the interval at a stop is valid whatever the rule
  did (Jennison and Turnbull ch. 9); it excludes 0 exactly when the boundary is crossed.
- ``anytime``: the asymptotic confidence sequence with Robbins' normal mixture (Waudby-Smith, Arbour,
  Sinha, Kennedy and Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences",
  Ann. Statist. 2024; the mixture's two-sided form as in Howard et al. 2021):
  mean_n +/- sd_n sqrt(2 (n rho^2 + 1) / (n^2 rho^2) log(sqrt(n rho^2 + 1) / alpha)), rho chosen so the
  sequence is tightest at the planned size. It holds at every n at once, so it may be checked after every
  participant; it is checked from :data:`ANYTIME_MIN` participants on (the variance is estimated).

Both are validated by simulation in ``bench/sequential.py`` and ``tests/test_sequential.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from survey.analysis.group_sequential import efficacy_bounds
from survey.study.stopping import PrimaryComparison, StoppingRule

ANYTIME_MIN = 10  # the confidence sequence is checked from this many participants with a difference on


@dataclass(frozen=True)
class Look:
    """One analysis of the primary comparison. ``decision``: efficacy | futility | continue | final (the last
    planned look without crossing) | not reached (too few analysed participants yet) | not estimable."""

    look: int  # 1-based; anytime rule: the participant count
    planned: int  # analysed participants the look is planned at
    participants: int  # of those, participants with answers on both conditions
    estimate: float  # mean difference a - b
    std_error: float
    z: float  # two-sided test's z value (from the paired t statistic)
    boundary: float  # |z| that stops for efficacy (anytime rule: NaN)
    ci_low: float  # repeated confidence interval (anytime: the confidence sequence)
    ci_high: float
    decision: str


@dataclass(frozen=True)
class SequentialResult:
    comparison: str  # "a - b on the protocol's statistic"
    rule: str  # the stopping rule in one sentence
    alpha: float
    analysed: int  # analysed participants so far
    looks: tuple[Look, ...]
    stopped_at: int | None  # the look (anytime: participants) where a boundary was first crossed
    decision: str  # the recommendation now, in words
    blinded_decision: str  # the same without the estimate (no direction: for the admin page before unblinding)


def paired_z(mean: np.ndarray, sd: np.ndarray, m: np.ndarray | int) -> np.ndarray:
    """z values with the two-sided p value of the paired t statistic mean / (sd / sqrt(m)), m - 1 df."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / np.sqrt(m))
    return np.sign(t) * stats.norm.isf(stats.t.sf(np.abs(t), np.asarray(m) - 1))


def t_half_width(c: np.ndarray | float, sd: np.ndarray | float, m: np.ndarray | int) -> np.ndarray:
    """Half-width of the repeated confidence interval at boundary ``c``: t_{m-1}^-1(Phi(c)) sd / sqrt(m)."""
    return stats.t.isf(stats.norm.sf(c), np.asarray(m) - 1) * np.asarray(sd) / np.sqrt(m)


def cs_half_width(sd: np.ndarray | float, n: np.ndarray | int, alpha: float, planned: int) -> np.ndarray:
    """Half-width of the normal-mixture confidence sequence at n observations, tightest near ``planned``."""
    log_a = -2 * math.log(alpha)
    rho2 = (log_a + math.log(log_a + 1)) / planned
    n = np.asarray(n, float)
    return np.asarray(sd) * np.sqrt(2 * (n * rho2 + 1) / (n**2 * rho2) * np.log(np.sqrt(n * rho2 + 1) / alpha))


def _stats(d: np.ndarray) -> tuple[float, float, int]:
    m = len(d)
    return float(d.mean()) if m else math.nan, float(d.std(ddof=1)) if m > 1 else math.nan, m


def group_sequential_looks(differences: np.ndarray, analysed: int, rule: StoppingRule) -> list[Look]:
    """The looks of ``rule`` over ``differences`` (one per analysed participant in finishing order; NaN for a
    participant without answers on both conditions). ``analysed``: analysed participants so far."""
    bounds = efficacy_bounds(np.array(rule.looks) / rule.looks[-1], rule.alpha, rule.spending)
    looks, stopped = [], False
    for k, (n, c) in enumerate(zip(rule.looks, bounds, strict=True)):
        d = differences[:n][~np.isnan(differences[:n])]
        mean, sd, m = _stats(d)
        if analysed < n:
            looks.append(Look(k + 1, n, m, math.nan, math.nan, math.nan, float(c), math.nan, math.nan, "not reached"))
            continue
        if m < 3 or not sd > 0:
            looks.append(Look(k + 1, n, m, mean, math.nan, math.nan, float(c), math.nan, math.nan, "not estimable"))
            continue
        z = float(paired_z(np.array(mean), np.array(sd), m))
        half = float(t_half_width(c, sd, m))
        last = k == len(rule.looks) - 1
        if abs(z) >= c:
            decision = "efficacy"
        elif rule.futility_z is not None and not last and abs(z) < rule.futility_z:
            decision = "futility"
        else:
            decision = "final" if last else "continue"
        if stopped:
            decision = f"after stop: {decision}"
        stopped = stopped or decision in ("efficacy", "futility")
        looks.append(Look(k + 1, n, m, mean, sd / math.sqrt(m), z, float(c), mean - half, mean + half, decision))
    return looks


def anytime_looks(differences: np.ndarray, rule: StoppingRule) -> list[Look]:
    """The confidence sequence at the first participant count where it excludes 0 (if any) and now."""
    d = differences[~np.isnan(differences)][: rule.max_participants]
    out, first = [], None
    for n in range(ANYTIME_MIN, len(d) + 1):
        mean, sd, _ = _stats(d[:n])
        half = float(cs_half_width(sd, n, rule.alpha, rule.max_participants))
        if sd > 0 and abs(mean) > half:
            first = n
            break
    for n in dict.fromkeys(x for x in (first, len(d)) if x is not None and x >= ANYTIME_MIN):
        mean, sd, _ = _stats(d[:n])
        half = float(cs_half_width(sd, n, rule.alpha, rule.max_participants))
        crossed = sd > 0 and abs(mean) > half
        decision = "efficacy" if crossed else ("final" if n >= rule.max_participants else "continue")
        if first is not None and n > first:
            decision = f"after stop: {decision}"
        z = float(paired_z(np.array(mean), np.array(sd), n))
        out.append(Look(n, n, n, mean, sd / math.sqrt(n), z, math.nan, mean - half, mean + half, decision))
    return out


def monitor(differences: np.ndarray, analysed: int, primary: PrimaryComparison, rule: StoppingRule) -> SequentialResult:
    """Apply ``rule`` to the per-participant differences (finishing order; NaN: no answers on both)."""
    differences = np.asarray(differences, float)
    if rule.rule == "group-sequential":
        looks = group_sequential_looks(differences, analysed, rule)
    else:
        looks = anytime_looks(differences, rule)
    stop = next((lk for lk in looks if lk.decision in ("efficacy", "futility")), None)
    blinded, detail = _decision(looks, stop, rule, analysed)
    return SequentialResult(
        comparison=f"{primary.a} - {primary.b} ({primary.protocol}: {primary.statistic})",
        rule=rule.describe(),
        alpha=rule.alpha,
        analysed=analysed,
        looks=tuple(looks),
        stopped_at=stop.look if stop else None,
        decision=blinded + detail,
        blinded_decision=blinded,
    )


def _decision(looks: list[Look], stop: Look | None, rule: StoppingRule, analysed: int) -> tuple[str, str]:
    """The recommendation without any estimate, and what the estimate adds to it."""
    if stop is not None and stop.decision == "efficacy":
        where = f"{stop.planned} participants"
        if rule.rule == "group-sequential":
            where = f"look {stop.look} ({where})"
        return f"stop for efficacy: the boundary was crossed at {where}", (
            f"; difference {stop.estimate:+.3f}, adjusted {1 - rule.alpha:.0%} interval "
            f"[{stop.ci_low:+.3f}, {stop.ci_high:+.3f}]"
        )
    if stop is not None:
        return (
            f"stopping for futility is advised at look {stop.look} ({stop.planned} participants): |z| = "
            f"{abs(stop.z):.2f} < {rule.futility_z:g} (non-binding: continuing keeps the error rate)"
        ), ""
    final = next((lk for lk in looks if lk.decision == "final"), None)
    if final is not None:
        return f"the last look ({final.planned} participants) did not cross the boundary: no difference shown", ""
    upcoming = next((lk.planned for lk in looks if lk.decision == "not reached"), None)
    if rule.rule == "group-sequential":
        return f"continue: {analysed} analysed participants; next look at {upcoming}", ""
    return f"continue: {analysed} analysed participants, the confidence sequence includes 0", ""
