"""Test-retest consistency from repeat trials (``repeat_rate``): the same unit shown to the same
participant twice, the second time later and with the grids in other positions.

Input: the ``repeats`` table of :func:`survey.study.export.tables` (one row per answered repeat, with
the first answer beside it; documented columns ``participant``, ``protocol``, ``first``,
``repeat``, ``agree``).

* ratings: the quadratic-weighted kappa of first against repeat answer over the 1..7 scale
  (Cohen 1968; quadratic weights make it close to an intraclass correlation), and the share of
  answers within one point;
* choices (pairwise, ranking): the share of identical answers (same grid chosen, or same best and
  worst grid).

Intervals: percentile bootstrap over participants (their repeats resampled together, since the
repeats of one person are not independent), with an explicit seed. Per participant: the same
statistics over their own repeats (kappa is undefined, NaN, when their answers do not vary).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.analysis.protocol_parts import PARTS
from survey.protocols import NAMES

SCALE = np.arange(1, 8)


def weighted_kappa(first, repeat, *, categories=SCALE) -> float:
    """Quadratic-weighted kappa of two ratings of the same items: ``1 - sum(w O) / sum(w E)`` with
    ``O`` the observed and ``E`` the chance (product of margins) joint distribution over
    ``categories`` and ``w = (i - j)^2``. NaN when chance disagreement is 0 (no variation)."""
    a, b = np.asarray(first), np.asarray(repeat)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("first and repeat must be 1-d arrays of the same length")
    cats = np.asarray(categories)
    index = {c: i for i, c in enumerate(cats.tolist())}
    unknown = set(a.tolist()) | set(b.tolist())
    unknown -= set(index)
    if unknown:
        raise ValueError(f"ratings {sorted(unknown)} are not among the categories {cats.tolist()}")
    if len(a) == 0:
        return float("nan")
    observed = np.zeros((len(cats), len(cats)))
    np.add.at(observed, ([index[x] for x in a.tolist()], [index[x] for x in b.tolist()]), 1)
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    w = (np.arange(len(cats))[:, None] - np.arange(len(cats))[None, :]) ** 2
    chance = float((w * expected).sum())
    return float("nan") if chance == 0 else 1 - float((w * observed).sum()) / chance


@dataclass(frozen=True)
class Consistency:
    """Test-retest consistency of one protocol, over every participant's repeats."""

    protocol: str
    pairs: int
    participants: int
    agreement: float  # ratings: within one point; choices: identical
    agreement_ci_low: float
    agreement_ci_high: float
    kappa: float | None  # ratings only: quadratic-weighted kappa
    kappa_ci_low: float | None
    kappa_ci_high: float | None
    n_boot: int
    seed: int


@dataclass(frozen=True)
class ParticipantConsistency:
    participant: int
    protocol: str
    pairs: int
    agreement: float
    kappa: float | None  # ratings only; NaN when undefined


def _iv(repeats: pd.DataFrame) -> None:
    missing = {"participant", "protocol", "first", "repeat", "agree"} - set(repeats.columns)
    if missing:
        raise ValueError(f"repeats table lacks {sorted(missing)}; use survey.study.export.tables()['repeats']")


def _stats(rows: pd.DataFrame, protocol: str) -> tuple[float, float | None]:
    agreement = float(rows["agree"].astype(float).mean()) if len(rows) else float("nan")
    if not PARTS[protocol].retest_kappa:
        return agreement, None
    return agreement, weighted_kappa(rows["first"].astype(int).to_numpy(), rows["repeat"].astype(int).to_numpy())


def retest_consistency(repeats: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> list[Consistency]:
    """Per protocol with repeats: agreement (and for ratings weighted kappa) with participant
    bootstrap 95% intervals."""
    _iv(repeats)
    rng = np.random.default_rng(seed)
    out = []
    for protocol in NAMES:
        rows = repeats[repeats["protocol"] == protocol]
        if rows.empty:
            continue
        agreement, kappa = _stats(rows, protocol)
        by_person = [g for _, g in rows.groupby("participant")]
        boot_a, boot_k = [], []
        for _ in range(n_boot):
            pick = rng.integers(0, len(by_person), len(by_person))
            a, k = _stats(pd.concat([by_person[i] for i in pick]), protocol)
            boot_a.append(a)
            if k is not None:
                boot_k.append(k)

        def interval(values: list[float]) -> tuple[float, float]:
            v = np.asarray(values, dtype=float)
            v = v[~np.isnan(v)]
            return (float("nan"), float("nan")) if len(v) == 0 else tuple(np.percentile(v, [2.5, 97.5]).tolist())

        a_lo, a_hi = interval(boot_a)
        k_lo, k_hi = interval(boot_k) if kappa is not None else (None, None)
        out.append(
            Consistency(
                protocol,
                len(rows),
                len(by_person),
                agreement,
                a_lo,
                a_hi,
                kappa,
                k_lo,
                k_hi,
                n_boot,
                seed,
            )
        )
    return out


def per_participant(repeats: pd.DataFrame) -> list[ParticipantConsistency]:
    """Each participant's consistency per protocol."""
    _iv(repeats)
    out = []
    for (pid, protocol), rows in repeats.groupby(["participant", "protocol"], sort=True):
        agreement, kappa = _stats(rows, str(protocol))
        out.append(ParticipantConsistency(int(pid), str(protocol), len(rows), agreement, kappa))
    return out


@dataclass(frozen=True)
class ConsistencySpread:
    """How far participants differ: the distribution of each participant's agreement with
    themselves in one protocol (quartiles by linear interpolation, as ``numpy.percentile``)."""

    protocol: str
    participants: int
    lowest: float
    q1: float
    median: float
    q3: float
    below_half: int  # participants agreeing with themselves on fewer than half of their repeats


def participant_spread(repeats: pd.DataFrame) -> list[ConsistencySpread]:
    """Per protocol with repeats: the spread of :func:`per_participant` agreement."""
    people = per_participant(repeats)
    out = []
    for protocol in NAMES:
        a = np.array([p.agreement for p in people if p.protocol == protocol], dtype=float)
        if len(a):
            q1, median, q3 = np.percentile(a, [25, 50, 75])
            out.append(
                ConsistencySpread(
                    protocol, len(a), float(a.min()), float(q1), float(median), float(q3), int((a < 0.5).sum())
                )
            )
    return out
