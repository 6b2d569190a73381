"""Agreement between participants: Krippendorff's alpha (level of measurement always explicit) and split-half
reliability of the condition means."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

Level = Literal["nominal", "ordinal", "interval", "ratio"]  # Krippendorff levels of measurement


@dataclass(frozen=True)
class Agreement:
    protocol: str
    level: Level  # Krippendorff level of measurement, always chosen explicitly
    alpha: float
    ci_low: float
    ci_high: float
    units: int  # judged units with at least two judgements
    raters: int


def krippendorff_alpha(
    units_by_rater: pd.DataFrame, level: Level, *, n_boot: int = 1000, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Krippendorff's alpha of a raters x units matrix (NaN = not judged) with a percentile
    bootstrap CI over units. ``level`` is required: 'nominal', 'ordinal', 'interval' or 'ratio'."""
    import krippendorff

    if level not in get_args(Level):
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    data = units_by_rater.to_numpy(dtype=float)
    data = data[:, (~np.isnan(data)).sum(axis=0) >= 2]  # only units judged at least twice carry information
    if data.shape[1] < 2 or len(np.unique(data[~np.isnan(data)])) < 2:
        return float("nan"), float("nan"), float("nan")
    alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    boots = []
    for _ in range(n_boot):
        sample = data[:, rng.integers(0, data.shape[1], data.shape[1])]
        if len(np.unique(sample[~np.isnan(sample)])) >= 2:
            boots.append(krippendorff.alpha(reliability_data=sample, level_of_measurement=level))
    lo, hi = np.quantile(boots, [0.025, 0.975]) if boots else (float("nan"), float("nan"))
    return alpha, float(lo), float(hi)


def agreement(judgements: pd.DataFrame, protocol: str, *, n_boot: int = 1000, rng: np.random.Generator) -> Agreement:
    """Inter-rater agreement: ordinal alpha over ratings of the same grid, or nominal alpha over
    choices in the same pair of grids (coded by which grid won, whatever side it was shown on)."""
    d = judgements[(judgements["protocol"] == protocol) & ~judgements["is_catch"].astype(bool)]
    d = d.drop_duplicates(["response_id", "grid"])
    if protocol == "rating":
        level: Level = "ordinal"
        table = d.pivot_table(index="participant", columns="grid", values="rating", aggfunc="first")
    elif protocol == "pairwise":
        level = "nominal"
        rows = []
        for _, g in d.groupby("response_id"):
            grids = sorted(g["grid"])
            winner = g.loc[g["outcome"] == "win", "grid"]
            code = 0.0 if winner.empty else 1.0 + grids.index(winner.iloc[0])
            rows.append((g["participant"].iloc[0], "|".join(grids), code))
        table = pd.DataFrame(rows, columns=["participant", "unit", "code"]).pivot_table(
            index="participant", columns="unit", values="code", aggfunc="first"
        )
    else:
        raise ValueError(f"agreement is defined here for rating and pairwise, not {protocol!r}")
    if table.empty:
        return Agreement(protocol, level, float("nan"), float("nan"), float("nan"), 0, 0)
    alpha, lo, hi = krippendorff_alpha(table, level, n_boot=n_boot, rng=rng)
    units = int(((~table.isna()).sum(axis=0) >= 2).sum())
    return Agreement(protocol, level, alpha, lo, hi, units, int(table.shape[0]))


@dataclass(frozen=True)
class SplitHalf:
    r: float  # mean correlation of condition means between random halves of the participants
    spearman_brown: float | None  # reliability of the full sample, 2 r / (1 + r); None when undefined
    splits: int
    spearman_brown_reason: str | None = None  # why spearman_brown is None


def spearman_brown(r: float) -> tuple[float | None, str | None]:
    """Full-sample reliability 2 r / (1 + r) from the split-half correlation ``r``, or (None, the reason).

    The step assumes the halves measure the same thing (r >= 0); for a negative r it leaves [-1, 1]
    (r = -0.56 would give -2.53) and means nothing, so it is not reported.
    """
    if np.isnan(r):
        return None, "no split-half correlation"
    if r < 0:
        return None, (
            f"the split-half correlation r = {r:.2f} is negative (the halves order the conditions "
            "in opposite ways) and the Spearman-Brown step is only defined for r >= 0"
        )
    return 2 * r / (1 + r), None


def split_half(ratings: pd.DataFrame, *, splits: int = 200, rng: np.random.Generator) -> SplitHalf:
    """Split-half reliability of condition mean ratings: the mean correlation between random participant
    halves, and from it the full sample's by :func:`spearman_brown` (only for a non-negative correlation)."""
    people = ratings["participant"].unique()
    if len(people) < 4 or ratings["condition"].nunique() < 3:
        return SplitHalf(float("nan"), None, 0, "needs at least 4 participants and 3 conditions")
    rs = []
    for _ in range(splits):
        half = set(rng.permutation(people)[: len(people) // 2])
        a = ratings[ratings["participant"].isin(half)].groupby("condition")["rating"].mean()
        b = ratings[~ratings["participant"].isin(half)].groupby("condition")["rating"].mean()
        both = pd.concat([a, b], axis=1).dropna()
        if len(both) >= 3 and both.iloc[:, 0].std() > 0 and both.iloc[:, 1].std() > 0:
            rs.append(float(np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1]))
    if not rs:
        return SplitHalf(float("nan"), None, 0, "no split gave two halves whose condition means vary")
    r = float(np.mean(rs))
    value, reason = spearman_brown(r)
    return SplitHalf(r, value, len(rs), reason)
