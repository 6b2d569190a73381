"""All of a study's statistics in one object: computed once, formatted by the HTML report
(:mod:`survey.analysis.report`) and by ``lookalike report --json``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
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
    t = tables(make_session, study_id)
    flow = apply_exclusions(t["participants"], rules)
    j = t["judgements"][t["judgements"]["participant"].isin(flow.kept_ids)]
    ratings = ratings_from_judgements(j)
    # each condition's participants resampled once, for the CIs of its mean rating and of its mean
    # z-score: the draws both would make from the seed, made once (half the bootstrap time)
    resamples = condition_resamples(ratings, n_boot=n_boot, rng=np.random.default_rng(seed))
    conditions = (
        condition_summaries(ratings, n_boot=n_boot, seed=seed, resamples=resamples) if not ratings.empty else []
    )
    fr = friedman(j) if not ratings.empty else None
    wil = pairwise_wilcoxon(j) if not ratings.empty else []
    mixed, mixed_failure = None, None
    if len(ratings) >= 10:
        try:
            mixed = method_segmenter_model(ratings)
        except MixedModelError as exc:  # a pilot the model cannot estimate: the rest of the report still stands
            mixed_failure = str(exc)
    bt = bradley_terry_bootstrap(j, n_boot=min(n_boot, 500), rng=np.random.default_rng(seed))
    bw = best_worst_scores(j, n_boot=n_boot, rng=np.random.default_rng(seed))
    pl = plackett_luce_bootstrap(j, n_boot=min(n_boot, 500), rng=np.random.default_rng(seed))
    wtl = win_tie_loss(j)
    z = (
        zscored_analysis(ratings, n_boot=n_boot, rng=np.random.default_rng(seed), resamples=resamples)
        if not ratings.empty
        else None
    )
    dist = rating_distribution(ratings) if not ratings.empty else []
    prec = precision_at_k(j, n_boot=n_boot, rng=np.random.default_rng(seed)) if not ratings.empty else []
    agree = [
        agreement(j, p, n_boot=min(n_boot, 500), rng=np.random.default_rng(seed))
        for p in ("rating", "pairwise")
        if (j["protocol"] == p).any()
    ]
    sh = split_half(ratings, rng=np.random.default_rng(seed)) if not ratings.empty else None
    human = {c.condition: c.mean for c in conditions}
    with make_session() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise StudyUnavailable(f"no study with id {study_id}; `lookalike study list` shows this database's studies")
        name = study.name
        objective = [
            ObjectiveVsHuman(label, r5, mp, human.get(label))
            for label, r5, mp in s.execute(
                select(Condition.label, ObjectiveMetric.recall_at_5, ObjectiveMetric.mean_average_precision)
                .join(ObjectiveMetric)
                .where(Condition.study_id == study_id)
                .order_by(Condition.id)
            )
        ]
    paired = [(o.recall_at_5, o.human_mean) for o in objective if o.human_mean is not None]
    rho = float(sps.spearmanr(*zip(*paired, strict=True)).statistic) if len(paired) >= 3 else None
    kept_repeats = t["repeats"][t["repeats"]["participant"].isin(flow.kept_ids)]
    return StudyResults(
        study=name,
        exclusions=flow,
        conditions=conditions,
        rating_distribution=dist,
        friedman=fr,
        wilcoxon=wil,
        zscored=z,
        mixed_model=mixed,
        mixed_model_failure=mixed_failure,
        win_tie_loss=wtl,
        bradley_terry=bt,
        precision=prec,
        agreement=agree,
        split_half=sh,
        best_worst=bw,
        plackett_luce=pl,
        objective=objective,
        objective_spearman=rho,
        n_boot=n_boot,
        seed=seed,
        consistency=retest_consistency(kept_repeats, n_boot=n_boot, seed=seed),
        consistency_spread=participant_spread(kept_repeats),
    )
