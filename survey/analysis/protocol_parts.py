"""Each protocol's part in the analysis: its statistics (the :class:`~survey.analysis.results.StudyResults`
fields it fills), how agreement between people is coded, whether retest consistency has an
ordinal kappa, and how simulated people answer it (one answer through the service, or many at
once). The analysis layer's part of :mod:`survey.protocols`.

The simulated answers apply the response model of :mod:`survey.analysis.response_model`
(a latent similarity per grid, mapped to an answer); the random draws of each protocol are made
in a fixed order, so a seeded simulation is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from db.models import Trial
from survey.analysis.agreement import Agreement, Level, agreement_of, split_half
from survey.analysis.bradley_terry import bradley_terry_bootstrap, bradley_terry_firth_wald, win_tie_loss
from survey.analysis.conditions import condition_resamples, condition_summaries, ratings_from_judgements
from survey.analysis.mixed_model import MixedModelError, MixedModelResult, method_segmenter_model
from survey.analysis.plackett_luce import best_worst_scores, plackett_luce_bootstrap
from survey.analysis.ratings import friedman, pairwise_wilcoxon, precision_at_k, rating_distribution, zscored_analysis
from survey.analysis.response_model import (
    ResponseModel,
    attentive_unrelated,
    best_worst_from_latent,
    pairwise_from_latent,
    rating_from_latent,
    ticks_from_latent,
    unrelated_rating_from_latent,
)
from survey.analysis.swipe_results import swipe_statistics
from survey.analysis.swipe_rounds import Swiper, play_round
from survey.participants import service
from survey.protocols import NAMES, Parts

#: The most bootstrap resamples of the slower analyses (Bradley-Terry, Plackett-Luce, alpha).
SLOW_RESAMPLES = 500


@dataclass(frozen=True)
class SimulatedTrial:
    """One trial as a simulated person answers it: ``latent`` per grid shown (display order),
    already seen as an attentive person sees a check, ``unrelated_view`` set when it is one."""

    make_session: sessionmaker[Session]
    token: str
    trial: Trial
    view: service.TrialView
    latent: np.ndarray
    careless: bool
    unrelated_view: bool
    bias: float
    model: ResponseModel
    rng: np.random.Generator
    now: datetime
    effect: Mapping[str, float] = field(default_factory=dict)  # per grid: what a swipe round's set is liked by


@dataclass(frozen=True)
class SimulatedBlock:
    """Answers of many trials at once: ``latent`` (trials x slots, NaN: an empty slot), ``lazy``
    (a careless person's trial), ``bias`` per trial. A part returns the trial's rating (or None)
    and the outcome of each slot (trials x slots, or None)."""

    latent: np.ndarray
    valid: np.ndarray
    lazy: np.ndarray
    bias: np.ndarray
    model: ResponseModel
    rng: np.random.Generator


@dataclass(frozen=True)
class Kept:
    """What a protocol's statistics are computed from: the judgements of the participants the
    exclusion rules keep, the bootstrap resamples, and the seed every analysis draws from (each
    with its own generator)."""

    judgements: pd.DataFrame
    n_boot: int
    seed: int
    swipes: pd.DataFrame = field(default_factory=pd.DataFrame)  # the export's swipes table (kept participants)
    swipe_rounds: pd.DataFrame = field(default_factory=pd.DataFrame)  # and its swipe_rounds table
    adaptive_floor: int | None = None  # pairwise units assigned adaptively after this floor (None: uniformly)

    def rng(self) -> np.random.Generator:
        """A fresh generator seeded with :attr:`seed` (each analysis gets its own)."""
        return np.random.default_rng(self.seed)


@dataclass(frozen=True)
class AnalysisParts:
    """One protocol's analysis parts.

    ``statistics``: the ``StudyResults`` fields it fills, by name, from the kept judgements
    (computed whether or not the study used it: empty results then); ``agreement``: the
    Krippendorff level and the participant x unit table of codes that alpha runs on, made from
    the protocol's rows of the judgements table (None: agreement is not defined for it);
    ``retest_kappa``: its answers are ordinal, so retest consistency adds a weighted kappa;
    ``answer``: one simulated answer stored through the service (1 if stored); ``block``: many
    simulated answers at once, as ``(rating per trial, outcome per slot)`` (None: the protocol's
    trials are rounds, simulated through the service or by :mod:`survey.analysis.swipe_simulation`)."""

    statistics: Callable[[Kept], dict[str, Any]]
    agreement: tuple[Level, Callable[[pd.DataFrame], pd.DataFrame]] | None
    retest_kappa: bool
    answer: Callable[[SimulatedTrial], int]
    block: Callable[[SimulatedBlock], tuple[np.ndarray | None, np.ndarray | None]] | None


PARTS: Parts[AnalysisParts] = Parts("analysis", "analysis parts")


def statistics(kept: Kept) -> dict[str, Any]:
    """Every protocol's statistics, as ``StudyResults`` fields by name."""
    fields: dict[str, Any] = {}
    for protocol in NAMES:
        fields |= PARTS[protocol].statistics(kept)
    return fields


def agreement(judgements: pd.DataFrame, protocol: str, *, n_boot: int = 1000, rng: np.random.Generator) -> Agreement:
    """Inter-rater agreement on ``protocol``'s answers, coded as its part says (ratings: ordinal
    alpha over ratings of the same grid; pairwise: nominal alpha over choices in the same pair of
    grids, coded by which grid won, whatever side it was shown on)."""
    coding = PARTS[protocol].agreement
    if coding is None:
        raise ValueError(f"agreement between people is not defined for {protocol!r} answers")
    d = judgements[(judgements["protocol"] == protocol) & ~judgements["is_catch"].astype(bool)]
    level, to_table = coding
    return agreement_of(to_table(d.drop_duplicates(["response_id", "grid"])), protocol, level, n_boot=n_boot, rng=rng)


def agreements(kept: Kept) -> list[Agreement]:
    """Agreement per protocol the study used and whose answers have a coding."""
    present = set(kept.judgements["protocol"])
    return [
        agreement(kept.judgements, p, n_boot=min(kept.n_boot, SLOW_RESAMPLES), rng=kept.rng())
        for p in NAMES
        if p in present and PARTS[p].agreement is not None
    ]


def answer_trial(
    make_session: sessionmaker[Session],
    token: str,
    t: Trial,
    view: service.TrialView,
    careless: bool,
    bias: float,
    effect: dict[str, float],
    catch: frozenset[str],
    model: ResponseModel,
    rng: np.random.Generator,
    now: datetime,
) -> int:
    """One simulated answer to trial ``t`` (shown as ``view``), stored through the service at ``now``
    (1 if stored): the response model, as :func:`survey.analysis.simulate.simulate` applies it."""
    latent = np.array([effect[g] + rng.normal(0, model.noise_sd) for g in t.grid_ids])
    attentive_check = t.is_catch and not careless
    if attentive_check:  # an attentive view of the unrelated set (survey.analysis.simulate's docstring)
        latent = attentive_unrelated(latent, [g in catch for g in t.grid_ids])
    trial = SimulatedTrial(
        make_session, token, t, view, latent, careless, attentive_check, bias, model, rng, now, effect
    )
    return PARTS[t.protocol].answer(trial)


# --- rating ------------------------------------------------------------------------------------


def _rating_statistics(kept: Kept) -> dict[str, Any]:
    """Condition means, distributions, Friedman and Wilcoxon tests, the z-scored check,
    precision@k from ticks, split-half reliability and the method x segmenter mixed model."""
    judgements, n_boot, seed = kept.judgements, kept.n_boot, kept.seed
    ratings = ratings_from_judgements(judgements)
    if ratings.empty:
        empty: dict[str, Any] = {key: [] for key in ("conditions", "rating_distribution", "wilcoxon", "precision")}
        return empty | dict.fromkeys(("friedman", "zscored", "split_half", "mixed_model", "mixed_model_failure"))
    # each condition's participants resampled once, for the CIs of its mean rating and of its mean
    # z-score: the draws both would make from the seed, made once (half the bootstrap time)
    resamples = condition_resamples(ratings, n_boot=n_boot, rng=kept.rng())
    mixed, failure = _mixed_model(ratings)
    return {
        "conditions": condition_summaries(ratings, n_boot=n_boot, seed=seed, resamples=resamples),
        "rating_distribution": rating_distribution(ratings),
        "friedman": friedman(judgements),
        "wilcoxon": pairwise_wilcoxon(judgements),
        "zscored": zscored_analysis(ratings, n_boot=n_boot, rng=kept.rng(), resamples=resamples),
        "precision": precision_at_k(judgements, n_boot=n_boot, rng=kept.rng()),
        "split_half": split_half(ratings, rng=kept.rng()),
        "mixed_model": mixed,
        "mixed_model_failure": failure,
    }


def _mixed_model(ratings: pd.DataFrame) -> tuple[MixedModelResult | None, str | None]:
    """The method x segmenter mixed model of 10 or more ratings, or why it could not be estimated."""
    if len(ratings) < 10:
        return None, None
    try:
        return method_segmenter_model(ratings), None
    except MixedModelError as exc:  # a pilot the model cannot estimate: the rest of the report still stands
        return None, str(exc)


def _rating_table(d: pd.DataFrame) -> pd.DataFrame:
    """Ratings of the same grid, participant x grid."""
    return d.pivot_table(index="participant", columns="grid", values="rating", aggfunc="first")


def _rating_answer(s: SimulatedTrial) -> int:
    """A rating (at most the check limit for an attentive view of an unrelated set), with
    per-item ticks when the study asks for them."""
    rng = s.rng
    if s.careless:
        rating = int(rng.integers(1, 8))
    else:
        to_rating = unrelated_rating_from_latent if s.unrelated_view else rating_from_latent
        rating = int(to_rating(s.latent[0], s.bias))
    ticks = None
    if s.view.ticks:  # each item judged on its own: the grid's latent plus item noise
        n_items = len(s.view.grids[0])
        noisy = (
            rng.random(n_items) < 0.5
            if s.careless
            else ticks_from_latent(s.latent[0], rng.normal(0, s.model.noise_sd, n_items))
        )
        ticks = [bool(x) for x in noisy]
    return int(service.submit_rating(s.make_session, s.token, s.trial.id, rating, ticks, now=s.now))


def _rating_block(b: SimulatedBlock) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Ratings of the first (only) slot; a careless person's uniformly at random."""
    n = len(b.latent)
    return np.where(b.lazy, b.rng.integers(1, 8, n), rating_from_latent(b.latent[:, 0], b.bias)), None


PARTS.register(
    "rating",
    AnalysisParts(
        statistics=_rating_statistics,
        agreement=("ordinal", _rating_table),
        retest_kappa=True,
        answer=_rating_answer,
        block=_rating_block,
    ),
)


# --- pairwise ----------------------------------------------------------------------------------


def _pairwise_table(d: pd.DataFrame) -> pd.DataFrame:
    """Choices in the same pair of grids, participant x unit: per answer its grids sorted (the
    unit, whatever side each was shown on) and the code, 0 for a tie, else 1 + the winner's
    place among the sorted grids."""
    d = d.sort_values(["response_id", "grid"])
    answers = d.groupby("response_id", sort=True)
    place = answers.cumcount() + 1.0
    won = place.where(d["outcome"] == "win").groupby(d["response_id"]).max()
    return pd.DataFrame(
        {
            "participant": answers["participant"].first(),
            "unit": answers["grid"].agg("|".join),
            "code": won.fillna(0.0),
        }
    ).pivot_table(index="participant", columns="unit", values="code", aggfunc="first")


def _pairwise_answer(s: SimulatedTrial) -> int:
    """Left, right or tie by the latent difference (a careless person: at random)."""
    if s.careless:
        choice = str(s.rng.choice(["left", "right", "tie"]))
    else:
        choice = str(pairwise_from_latent(s.latent[0] - s.latent[1], s.model.tie_margin))
    return int(service.submit_pairwise(s.make_session, s.token, s.trial.id, choice, now=s.now))


def _pairwise_block(b: SimulatedBlock) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Win / loss / tie of each of the two slots."""
    choice = np.where(
        b.lazy,
        b.rng.choice(["left", "right", "tie"], len(b.latent)),
        pairwise_from_latent(b.latent[:, 0] - b.latent[:, 1], b.model.tie_margin),
    )
    left, right = choice == "left", choice == "right"
    outcome = np.column_stack(
        [np.select([left, right], ["win", "loss"], "tie"), np.select([left, right], ["loss", "win"], "tie")]
    )
    return None, outcome


def _pairwise_statistics(kept: Kept) -> dict[str, Any]:
    """Wins, ties and losses, and Bradley-Terry strengths: with uniform assignment the maximum-likelihood
    fit and participant-bootstrap intervals; with adaptive assignment Firth's bias-reduced fit and Wald
    intervals, the ones whose coverage bench/adaptive_pairs.py validated under that design (resampling
    participants does not redo the adaptive choices, and covered 0.924 there with eight conditions)."""
    if kept.adaptive_floor is None:
        strengths = bradley_terry_bootstrap(kept.judgements, n_boot=min(kept.n_boot, SLOW_RESAMPLES), rng=kept.rng())
        how = "maximum likelihood, participant-bootstrap percentile CI"
    else:
        strengths = bradley_terry_firth_wald(kept.judgements)
        how = f"adaptive assignment (floor {kept.adaptive_floor}): Firth's bias-reduced fit, Wald CI"
    return {"win_tie_loss": win_tie_loss(kept.judgements), "bradley_terry": strengths, "bradley_terry_interval": how}


PARTS.register(
    "pairwise",
    AnalysisParts(
        statistics=_pairwise_statistics,
        agreement=("nominal", _pairwise_table),
        retest_kappa=False,
        answer=_pairwise_answer,
        block=_pairwise_block,
    ),
)


# --- ranking (best-worst) ------------------------------------------------------------------------


def _ranking_answer(s: SimulatedTrial) -> int:
    """The highest and the lowest latent's positions (a careless person: two distinct at random)."""
    if s.careless:
        best, worst = (int(x) for x in s.rng.choice(len(s.latent), size=2, replace=False))
    else:
        best, worst = (int(x) for x in best_worst_from_latent(s.latent))
    return int(service.submit_ranking(s.make_session, s.token, s.trial.id, best, worst, now=s.now))


def _ranking_block(b: SimulatedBlock) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Best / worst / middle of each slot."""
    n, width = b.latent.shape
    best, worst = best_worst_from_latent(b.latent)
    n_valid = b.valid.sum(axis=1)
    rb = (b.rng.random(n) * n_valid).astype(int)
    rw = (rb + 1 + (b.rng.random(n) * (n_valid - 1)).astype(int)) % n_valid  # a different position
    best, worst = np.where(b.lazy, rb, best), np.where(b.lazy, rw, worst)
    pos = np.arange(width)[None, :]
    return None, np.where(pos == best[:, None], "best", np.where(pos == worst[:, None], "worst", "middle"))


PARTS.register(
    # Agreement between people is not coded for best-worst answers (no established unit code):
    # the report gives Plackett-Luce strengths and retest consistency instead.
    "ranking",
    AnalysisParts(
        statistics=lambda kept: {
            "best_worst": best_worst_scores(kept.judgements, n_boot=kept.n_boot, rng=kept.rng()),
            "plackett_luce": plackett_luce_bootstrap(
                kept.judgements, n_boot=min(kept.n_boot, SLOW_RESAMPLES), rng=kept.rng()
            ),
        },
        agreement=None,
        retest_kappa=False,
        answer=_ranking_answer,
        block=_ranking_block,
    ),
)


# --- swipe (rounds: simulated through the service, screen by screen) ------------------------------------


def _swipe_answer(s: SimulatedTrial) -> int:
    """A whole swipe round through the service: random products liked with probability
    ``sigmoid(SWIPE_BASE_LOGIT + bias)``, the chosen product's recommendations with
    ``sigmoid(SWIPE_BASE_LOGIT + SWIPE_MATCH_LOGIT + effect of the set's grid + bias + noise)``, the
    check product by an attentive person with ``sigmoid(SWIPE_CHECK_LOGIT)``; a careless person
    likes each at random (1/2), picks the first liked, rates the set at random. Screens are answered
    a second apart, ending at ``s.now``. Returns 1 when the round's answer was stored."""
    return play_round(Swiper(s.make_session, s.token, s.trial.id, s.careless, s.bias, s.effect, s.model, s.rng, s.now))


PARTS.register(
    "swipe",
    AnalysisParts(
        statistics=lambda kept: {"swipe": swipe_statistics(kept.swipes, kept.swipe_rounds, kept.n_boot, kept.rng)},
        agreement=None,  # people like different products: taste, not a shared judgement to agree on
        retest_kappa=False,
        answer=_swipe_answer,
        block=None,
    ),
)
