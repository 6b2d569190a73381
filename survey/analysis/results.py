"""All of a study's statistics in one object: computed once, formatted by the HTML report
(:mod:`survey.analysis.report`) and by ``lookalike report --json``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Condition, ObjectiveMetric, Study
from survey.analysis.agreement import Agreement, SplitHalf, agreement, split_half
from survey.analysis.bootstrap import StrengthEstimate
from survey.analysis.bradley_terry import WinTieLoss, bradley_terry_bootstrap, win_tie_loss
from survey.analysis.conditions import (
    ConditionSummary,
    condition_resamples,
    condition_summaries,
    ratings_from_judgements,
)
from survey.analysis.consistency import Consistency, ConsistencySpread, participant_spread, retest_consistency
from survey.analysis.exclusions import DEFAULT_RULES, ExclusionFlow, ExclusionRules, apply_exclusions
from survey.analysis.mixed_model import MixedModelError, MixedModelResult, method_segmenter_model
from survey.analysis.plackett_luce import BestWorst, best_worst_scores, plackett_luce_bootstrap
from survey.analysis.ratings import (
    FriedmanResult,
    PairedComparison,
    PrecisionAtK,
    RatingDistribution,
    ZScoreResult,
    friedman,
    pairwise_wilcoxon,
    precision_at_k,
    rating_distribution,
    zscored_analysis,
)
from survey.study.errors import StudyUnavailable
from survey.study.export import tables


def nan_to_none(x: Any) -> Any:
    """``x`` (nested dicts, lists, tuples) with float NaN replaced by None: JSON has no NaN."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [nan_to_none(v) for v in x]
    return x


@dataclass(frozen=True)
class ObjectiveVsHuman:
    condition: str
    recall_at_5: float
    mean_average_precision: float
    human_mean: float | None


@dataclass(frozen=True)
class StudyResults:
    study: str
    exclusions: ExclusionFlow
    conditions: list[ConditionSummary]
    rating_distribution: list[RatingDistribution]
    friedman: FriedmanResult | None
    wilcoxon: list[PairedComparison]
    zscored: ZScoreResult | None  # per-rater z-scores: robustness check of the rating results
    mixed_model: MixedModelResult | None
    mixed_model_failure: str | None  # why the mixed model could not be estimated (then mixed_model is None)
    win_tie_loss: list[WinTieLoss]
    bradley_terry: list[StrengthEstimate]
    precision: list[PrecisionAtK]
    agreement: list[Agreement]
    split_half: SplitHalf | None
    best_worst: list[BestWorst]
    plackett_luce: list[StrengthEstimate]
    objective: list[ObjectiveVsHuman]
    objective_spearman: float | None  # rank correlation of recall@5 with the human mean rating
    n_boot: int
    seed: int
    consistency: list[Consistency] = dataclasses.field(default_factory=list)  # test-retest, from repeat trials
    consistency_spread: list[ConsistencySpread] = dataclasses.field(default_factory=list)  # per participant

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["exclusions"].pop("kept_ids")
        out["conditions"] = [
            {
                "method": c.method,
                "segmenter": c.segmenter,
                "condition": c.condition,
                "n": c.n_ratings,
                "participants": c.n_participants,
                "mean": c.mean,
                "median": c.median,
                "ci_low": c.ci_low,
                "ci_high": c.ci_high,
            }
            for c in self.conditions
        ]
        return nan_to_none(out)


def compute_results(
    make_session: sessionmaker[Session],
    study_id: int,
    *,
    rules: ExclusionRules = DEFAULT_RULES,
    n_boot: int = 2000,
    seed: int = 0,
) -> StudyResults:
    """Every statistic of study ``study_id`` over the participants ``rules`` keep: bootstrap intervals
    from ``n_boot`` resamples (500 at most for Bradley-Terry, Plackett-Luce and Krippendorff's alpha),
    each analysis drawing from its own generator seeded with ``seed``."""
    tidy = tables(make_session, study_id)
    flow = apply_exclusions(tidy["participants"], rules)
    judgements = tidy["judgements"][tidy["judgements"]["participant"].isin(flow.kept_ids)]
    kept_repeats = tidy["repeats"][tidy["repeats"]["participant"].isin(flow.kept_ids)]
    ratings = ratings_from_judgements(judgements)
    rated = _rating_statistics(ratings, judgements, n_boot=n_boot, seed=seed)
    mixed, mixed_failure = _mixed_model(ratings)
    name, objective = _objective_vs_human(make_session, study_id, rated.conditions)
    paired = [(o.recall_at_5, o.human_mean) for o in objective if o.human_mean is not None]
    return StudyResults(
        study=name,
        exclusions=flow,
        conditions=rated.conditions,
        rating_distribution=rated.distribution,
        friedman=rated.friedman,
        wilcoxon=rated.wilcoxon,
        zscored=rated.zscored,
        mixed_model=mixed,
        mixed_model_failure=mixed_failure,
        win_tie_loss=win_tie_loss(judgements),
        bradley_terry=bradley_terry_bootstrap(judgements, n_boot=min(n_boot, 500), rng=np.random.default_rng(seed)),
        precision=rated.precision,
        agreement=[
            agreement(judgements, p, n_boot=min(n_boot, 500), rng=np.random.default_rng(seed))
            for p in ("rating", "pairwise")
            if (judgements["protocol"] == p).any()
        ],
        split_half=rated.split_half,
        best_worst=best_worst_scores(judgements, n_boot=n_boot, rng=np.random.default_rng(seed)),
        plackett_luce=plackett_luce_bootstrap(judgements, n_boot=min(n_boot, 500), rng=np.random.default_rng(seed)),
        objective=objective,
        objective_spearman=float(sps.spearmanr(*zip(*paired, strict=True)).statistic) if len(paired) >= 3 else None,
        n_boot=n_boot,
        seed=seed,
        consistency=retest_consistency(kept_repeats, n_boot=n_boot, seed=seed),
        consistency_spread=participant_spread(kept_repeats),
    )


@dataclass(frozen=True)
class _RatingStatistics:
    """The rating protocol's statistics (empty lists and None while there are no ratings)."""

    conditions: list[ConditionSummary]
    distribution: list[RatingDistribution]
    friedman: FriedmanResult | None
    wilcoxon: list[PairedComparison]
    zscored: ZScoreResult | None
    precision: list[PrecisionAtK]
    split_half: SplitHalf | None


def _rating_statistics(ratings: pd.DataFrame, judgements: pd.DataFrame, *, n_boot: int, seed: int) -> _RatingStatistics:
    """Condition means, distributions, Friedman and Wilcoxon tests, the z-scored check, precision@k
    and split-half reliability of the kept ``ratings`` (and ``judgements``, for the tests and ticks)."""
    if ratings.empty:
        return _RatingStatistics([], [], None, [], None, [], None)
    # each condition's participants resampled once, for the CIs of its mean rating and of its mean
    # z-score: the draws both would make from the seed, made once (half the bootstrap time)
    resamples = condition_resamples(ratings, n_boot=n_boot, rng=np.random.default_rng(seed))
    return _RatingStatistics(
        conditions=condition_summaries(ratings, n_boot=n_boot, seed=seed, resamples=resamples),
        distribution=rating_distribution(ratings),
        friedman=friedman(judgements),
        wilcoxon=pairwise_wilcoxon(judgements),
        zscored=zscored_analysis(ratings, n_boot=n_boot, rng=np.random.default_rng(seed), resamples=resamples),
        precision=precision_at_k(judgements, n_boot=n_boot, rng=np.random.default_rng(seed)),
        split_half=split_half(ratings, rng=np.random.default_rng(seed)),
    )


def _mixed_model(ratings: pd.DataFrame) -> tuple[MixedModelResult | None, str | None]:
    """The method x segmenter mixed model of 10 or more ratings, or why it could not be estimated."""
    if len(ratings) < 10:
        return None, None
    try:
        return method_segmenter_model(ratings), None
    except MixedModelError as exc:  # a pilot the model cannot estimate: the rest of the report still stands
        return None, str(exc)


def _objective_vs_human(
    make_session: sessionmaker[Session], study_id: int, conditions: list[ConditionSummary]
) -> tuple[str, list[ObjectiveVsHuman]]:
    """The study's name, and each condition's objective retrieval metrics beside its human mean rating."""
    human = {c.condition: c.mean for c in conditions}
    with make_session() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise StudyUnavailable(f"no study with id {study_id}; `lookalike study list` shows this database's studies")
        objective = [
            ObjectiveVsHuman(label, recall_at_5, mean_ap, human.get(label))
            for label, recall_at_5, mean_ap in s.execute(
                select(Condition.label, ObjectiveMetric.recall_at_5, ObjectiveMetric.mean_average_precision)
                .join(ObjectiveMetric)
                .where(Condition.study_id == study_id)
                .order_by(Condition.id)
            )
        ]
        return study.name, objective
