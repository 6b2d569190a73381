"""The tidy ratings table and per-condition summaries of it (mean, median, participant-clustered CI).

Tidy ratings table (one row per rating x condition that produced the rated grid):

=============  ==============================================================
response_id    responses.id
participant    pseudonymous participant number (participants.id)
grid           opaque grid id
reference      reference item_id
category       reference category
rating         1..7
response_ms    milliseconds from first display to submit (may be missing)
method         method name (unblinded here, for analysis only)
segmenter      segmenter name
condition      "method/segmenter"
=============  ==============================================================

A rating of a grid shared by several conditions counts once for each of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from survey.analysis.bootstrap import ClusterResamples, resample_clusters, resampled_mean_ci

RATING_COLUMNS = (
    "response_id",
    "participant",
    "grid",
    "reference",
    "category",
    "rating",
    "response_ms",
    "method",
    "segmenter",
    "condition",
)


def ratings_from_judgements(judgements: pd.DataFrame) -> pd.DataFrame:
    """The tidy ratings table from :func:`survey.study.export.tables` judgements (attention checks left out)."""
    r = judgements[(judgements["protocol"] == "rating") & ~judgements["is_catch"].astype(bool)]
    r = r.assign(rating=r["rating"].astype(int))
    return r[list(RATING_COLUMNS)].reset_index(drop=True)


def ratings_table(make_session: sessionmaker[Session], study_id: int) -> pd.DataFrame:
    """Rating-protocol answers, attention checks left out, one row per rating x condition."""
    from survey.study.export import tables

    return ratings_from_judgements(tables(make_session, study_id)["judgements"])


@dataclass(frozen=True)
class ConditionSummary:
    condition: str
    method: str
    segmenter: str
    n_ratings: int
    n_participants: int
    mean: float
    median: float
    ci_low: float
    ci_high: float
    confidence: float
    n_boot: int
    seed: int


def condition_resamples(
    ratings: pd.DataFrame, *, n_boot: int, rng: np.random.Generator
) -> dict[str, ClusterResamples | None]:
    """Per condition (in sorted order), its participants resampled ``n_boot`` times
    (:func:`survey.analysis.bootstrap.resample_clusters`; None with one participant)."""
    return {
        str(cond): resample_clusters(g["participant"].to_numpy(), n_boot=n_boot, rng=rng)
        for cond, g in ratings.groupby("condition", sort=True)
    }


def resamples_of(
    resamples: Mapping[str, ClusterResamples | None], condition: str, n_boot: int
) -> ClusterResamples | None:
    """The replicates of ``condition`` from :func:`condition_resamples`, checked against ``n_boot``."""
    if condition not in resamples:
        raise ValueError(f"no resamples for condition {condition!r}; draw them with condition_resamples()")
    r = resamples[condition]
    if r is not None and len(r.weights) != n_boot:
        raise ValueError(f"the resamples of {condition!r} have {len(r.weights)} replicates, not n_boot={n_boot}")
    return r


def condition_summaries(
    ratings: pd.DataFrame,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: Mapping[str, ClusterResamples | None] | None = None,
) -> list[ConditionSummary]:
    """Per condition: number of ratings and participants, mean, median and a participant-clustered
    bootstrap CI of the mean. The replicates are :func:`condition_resamples` drawn from ``seed``,
    or ``resamples`` when given (drawn that way, to share them with other statistics)."""
    missing = set(RATING_COLUMNS) - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings table lacks column(s) {sorted(missing)}; build it with ratings_table()")
    if resamples is None:
        resamples = condition_resamples(ratings, n_boot=n_boot, rng=np.random.default_rng(seed))
    out = []
    for (cond, method, seg), g in ratings.groupby(["condition", "method", "segmenter"], sort=True):
        lo, hi = resampled_mean_ci(
            g["rating"].to_numpy(),
            g["participant"].to_numpy(),
            resamples_of(resamples, cond, n_boot),
            confidence=confidence,
        )  # nan if 1 participant
        out.append(
            ConditionSummary(
                cond,
                method,
                seg,
                len(g),
                g["participant"].nunique(),
                float(g["rating"].mean()),
                float(g["rating"].median()),
                lo,
                hi,
                confidence,
                n_boot,
                seed,
            )
        )
    return out
