"""A study's swipe results, from the kept participants' ``swipes`` and ``swipe_rounds`` tables: the
statistics of :mod:`survey.analysis.swipe_stats` in one object, as the report and ``report --json``
show them. Each part is computed only when the data allow it; why one could not be is kept beside it
(the rest of the report still stands).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.analysis import swipe_stats
from survey.analysis.swipe_stats import (
    BaseRate,
    Correlation,
    Lifts,
    LikeModel,
    LikeRates,
    PairedLikeComparison,
    PositionRates,
)

#: Fewer judged products than this: no model and no paired tests (a pilot still gets its rates).
MIN_JUDGED_FOR_TESTS = 20


@dataclass(frozen=True)
class SwipeResults:
    """The swipe protocol's statistics. ``rounds``: rounds by outcome (judged, no_like, unfinished);
    ``model_failure``: why the model could not be estimated (then ``model`` is None)."""

    rounds: dict[str, int]
    like_rates: LikeRates | None
    base_rate: BaseRate | None
    lifts: Lifts | None
    positions: PositionRates | None
    model: LikeModel | None
    model_failure: str | None
    paired: tuple[PairedLikeComparison, ...]
    rating_agreement: Correlation | None
    objective: Correlation | None = None  # like rate against recall@5 over the conditions (catalogs with groups)


def with_objective(sw: SwipeResults, recall_at_5: Mapping[str, float]) -> SwipeResults:
    """``sw`` with the Spearman correlation of its like rates and the conditions' objective recall@5
    (unchanged without like rates or metrics)."""
    if sw.like_rates is None or not recall_at_5:
        return sw
    return dataclasses.replace(sw, objective=swipe_stats.like_vs_objective(sw.like_rates, recall_at_5))


def answered(swipes: pd.DataFrame) -> pd.DataFrame:
    """The rows with an answer (a product shown to someone who then left has none)."""
    rows = swipes[swipes["liked"].notna()].copy()
    rows["liked"] = rows["liked"].astype(bool)
    rows["is_check"] = rows["is_check"].astype(bool)
    return rows


def swipe_statistics(
    swipes: pd.DataFrame, rounds: pd.DataFrame, n_boot: int, rng: Callable[[], np.random.Generator]
) -> SwipeResults | None:
    """Every swipe statistic of the kept participants (None without a swipe answer). ``rng`` gives
    each analysis a fresh generator (the study's seed)."""
    if swipes.empty or swipes["liked"].notna().sum() == 0:
        return None
    rows = answered(swipes)
    judged = rows[(rows["phase"] == "judge") & ~rows["is_check"]]
    has_choose = bool((rows["phase"] == "choose").any())
    enough = len(judged) >= MIN_JUDGED_FOR_TESTS and judged["condition"].nunique() >= 2
    model, failure = _model(rows) if enough else (None, None)
    ratings = rounds["rating"].notna().any() if not rounds.empty else False
    return SwipeResults(
        rounds={str(k): int(v) for k, v in rounds["outcome"].value_counts().items()} if not rounds.empty else {},
        like_rates=swipe_stats.like_rates(rows, n_boot=n_boot, rng=rng()) if len(judged) else None,
        base_rate=swipe_stats.base_rate(rows, n_boot=n_boot, rng=rng()) if has_choose else None,
        lifts=swipe_stats.lifts(rows, n_boot=n_boot, rng=rng()) if len(judged) and has_choose else None,
        positions=swipe_stats.position_rates(rows, n_boot=n_boot, rng=rng()) if len(judged) else None,
        model=model,
        model_failure=failure,
        paired=tuple(swipe_stats.paired_comparisons(rows)) if enough else (),
        rating_agreement=swipe_stats.rating_agreement(rounds, rows) if ratings else None,
    )


def _model(rows: pd.DataFrame) -> tuple[LikeModel | None, str | None]:
    """The like model, or why the data cannot estimate it (e.g. a condition never or always liked)."""
    try:
        return swipe_stats.like_model(rows), None
    except ValueError as exc:  # the data cannot estimate it: said in the report, the rest still stands
        return None, str(exc)
