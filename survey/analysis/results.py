"""All of a study's statistics in one object: computed once, formatted by the HTML report
(:mod:`survey.analysis.report`) and by ``lookalike report --json``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from scipy import stats as sps
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Condition, ObjectiveMetric, Study
from survey.analysis import protocol_parts
from survey.analysis.agreement import Agreement, SplitHalf
from survey.analysis.bootstrap import StrengthEstimate
from survey.analysis.bradley_terry import WinTieLoss
from survey.analysis.conditions import (
    ConditionSummary,
)
from survey.analysis.consistency import Consistency, ConsistencySpread, participant_spread, retest_consistency
from survey.analysis.exclusions import DEFAULT_RULES, ExclusionFlow, ExclusionRules, apply_exclusions
from survey.analysis.mixed_model import MixedModelResult
from survey.analysis.plackett_luce import BestWorst
from survey.analysis.ratings import (
    FriedmanResult,
    PairedComparison,
    PrecisionAtK,
    RatingDistribution,
    ZScoreResult,
)
from survey.analysis.sequential import SequentialResult
from survey.analysis.sequential_data import sequential_of, study_config
from survey.analysis.swipe_results import SwipeResults, with_objective
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
    bradley_terry_interval: str  # the fit and interval used (uniform: bootstrap; adaptive: Firth, Wald)
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
    swipe: SwipeResults | None = None  # the swipe rounds' like rates, base rate, lifts and model
    sequential: SequentialResult | None = None  # the study's stopping rule on its primary comparison, if declared

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
    """Every statistic of study ``study_id`` over the participants ``rules`` keep: each protocol's
    statistics (:mod:`survey.analysis.protocol_parts`), agreement, retest consistency and the
    human-vs-objective comparison. Bootstrap intervals from ``n_boot`` resamples (500 at most for
    Bradley-Terry, Plackett-Luce and Krippendorff's alpha), each analysis drawing from its own
    generator seeded with ``seed``."""
    tidy = tables(make_session, study_id)
    flow = apply_exclusions(tidy["participants"], rules)
    config = study_config(make_session, study_id)
    kept = protocol_parts.Kept(
        tidy["judgements"][tidy["judgements"]["participant"].isin(flow.kept_ids)],
        n_boot,
        seed,
        tidy["swipes"][tidy["swipes"]["participant"].isin(flow.kept_ids)],
        tidy["swipe_rounds"][tidy["swipe_rounds"]["participant"].isin(flow.kept_ids)],
        adaptive_floor=config.pairwise_adaptive_floor if config.pairwise_assignment == "adaptive" else None,
    )
    kept_repeats = tidy["repeats"][tidy["repeats"]["participant"].isin(flow.kept_ids)]
    fields = protocol_parts.statistics(kept)
    name, objective = _objective_vs_human(make_session, study_id, fields["conditions"])
    if fields["swipe"] is not None:
        fields["swipe"] = with_objective(fields["swipe"], {o.condition: o.recall_at_5 for o in objective})
    paired = [(o.recall_at_5, o.human_mean) for o in objective if o.human_mean is not None]
    return StudyResults(
        study=name,
        exclusions=flow,
        **fields,
        agreement=protocol_parts.agreements(kept),
        objective=objective,
        objective_spearman=float(sps.spearmanr(*zip(*paired, strict=True)).statistic) if len(paired) >= 3 else None,
        n_boot=n_boot,
        seed=seed,
        consistency=retest_consistency(kept_repeats, n_boot=n_boot, seed=seed),
        consistency_spread=participant_spread(kept_repeats),
        sequential=sequential_of(config, tidy, flow),
    )


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
