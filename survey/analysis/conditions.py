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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from .bootstrap import cluster_bootstrap_mean_ci

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
    """The tidy ratings table from :func:`survey.export.tables` judgements (attention checks left out)."""
    r = judgements[(judgements["protocol"] == "rating") & ~judgements["is_catch"].astype(bool)]
    r = r.assign(rating=r["rating"].astype(int))
    return r[list(RATING_COLUMNS)].reset_index(drop=True)


def ratings_table(make_session: sessionmaker[Session], study_id: int) -> pd.DataFrame:
    """Rating-protocol answers, attention checks left out, one row per rating x condition."""
    from ..export import tables

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


def condition_summaries(
    ratings: pd.DataFrame, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> list[ConditionSummary]:
    """Per condition: number of ratings and participants, mean, median and a participant-clustered
    bootstrap CI of the mean."""
    missing = set(RATING_COLUMNS) - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings table lacks column(s) {sorted(missing)}; build it with ratings_table()")
    out = []
    rng = np.random.default_rng(seed)
    for (cond, method, seg), g in ratings.groupby(["condition", "method", "segmenter"], sort=True):
        lo, hi = cluster_bootstrap_mean_ci(
            g["rating"].to_numpy(), g["participant"].to_numpy(), n_boot=n_boot, confidence=confidence, rng=rng
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
