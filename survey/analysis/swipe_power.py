"""Power of a swipe study by simulation: how many participants detect given differences between the
conditions' like rates (``lookalike power --protocol swipe``).

For each number of participants, ``reps`` studies are simulated with
:mod:`survey.analysis.swipe_simulation` on the study's own design (its categories, one round each
up to ``trials_per_participant``, its conditions, ``k``, ``pool_per_category``, ``max_swipes`` and
``attention_check_rate``). Participants have a taste in a latent space of the products and like
what lies near it; every condition recommends the same lists (equal noise), so the conditions
differ only by ``shifts``: the log-odds added to the like of a condition's recommended products
(0 for conditions not named: an exact null). Each study is analysed with the report's functions:

* omnibus: the like model's joint test of no difference between conditions
  (:func:`survey.analysis.swipe_stats.like_model`, GEE with a bias-reduced sandwich and an F test);
* the chosen pair: the Holm-corrected Wilcoxon test of that pair among all pairs
  (:func:`survey.analysis.swipe_stats.paired_comparisons`), counted only in the true direction
  (any rejection counts when the true shift difference is 0).

A study the model cannot estimate (e.g. a condition with no likes, at very small sizes) counts as
not rejecting. Power is the share of rejecting studies, with a Wilson 95 % interval for its Monte
Carlo error. ``bench/swipe_validity.py`` measures the tests' false-positive rates and coverage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import CatalogItem, Condition, Study
from survey.analysis.power import default_pair, detection_rate, fewest_reaching, studies_by_size
from survey.analysis.response_model import SimulationError
from survey.analysis.results import nan_to_none
from survey.analysis.swipe_simulation import SwipeModel, SwipeWorld, make_world, simulate_swipes
from survey.analysis.swipe_stats import like_model, paired_comparisons
from survey.protocols import get_protocol
from survey.study.config import StudyConfig

#: Products per category of the simulated catalog (the pool is drawn from them, the lists too).
ITEMS_PER_CATEGORY = 60


@dataclass(frozen=True)
class SwipeDesign:
    """What the simulation takes from a study: its categories (one round each), its conditions, the set
    size, the pool per category, the swipes allowed before a round ends, the share of checked rounds."""

    categories: tuple[str, ...]
    conditions: tuple[str, ...]
    k: int
    pool_per_category: int
    max_swipes: int
    check_rate: float


def swipe_design(make_session: sessionmaker[Session], study_id: int) -> SwipeDesign:
    """The design of a built study's swipe rounds (its pool's categories, as many as it plans rounds)."""
    with make_session() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise SimulationError(f"no study with id {study_id}")
        config = StudyConfig.from_dict(study.config)
        if not any(get_protocol(p).rounds for p in config.protocols):
            raise SimulationError(
                f"study {study.name!r} has no swipe rounds (its protocols: {', '.join(config.protocols)})"
            )
        categories = sorted(
            set(
                s.scalars(
                    select(CatalogItem.category).where(CatalogItem.study_id == study_id, CatalogItem.in_swipe_pool)
                )
            )
        )
        labels = s.scalars(select(Condition.label).where(Condition.study_id == study_id).order_by(Condition.id)).all()
    return SwipeDesign(
        tuple(categories[: config.trials_per_participant]),
        tuple(labels),
        config.k,
        config.swipe_pool_per_category,
        config.swipe_max_swipes,
        config.attention_check_rate,
    )


@dataclass(frozen=True)
class SwipePowerPoint:
    participants: int
    reps: int
    model_power: float  # share of studies whose like model rejects "no difference" at alpha
    model_ci_low: float
    model_ci_high: float
    pair_power: float  # share where the chosen pair differs (Holm-corrected, in the true direction)
    pair_ci_low: float
    pair_ci_high: float


@dataclass(frozen=True)
class SwipePowerResult:
    shifts: dict[str, float]
    pair: tuple[str, str]
    alpha: float
    target: float
    reps: int
    seed: int
    design: SwipeDesign
    points: list[SwipePowerPoint]
    needed_for_model: int | None  # smallest size tried that reaches the target (None: none did)
    needed_for_pair: int | None

    def to_json(self) -> dict:
        return nan_to_none(asdict(self))


def swipe_rejects(swipes, pair: tuple[str, str], truth: float, alpha: float) -> tuple[bool, bool]:
    """(the model's joint test rejects, the pair differs in the true direction) for one study."""
    try:
        omnibus = like_model(swipes).wald_pvalue < alpha
    except ValueError:  # not estimable with these data (counted as not rejecting, see the docstring)
        omnibus = False
    a, b = pair
    detected = False
    for c in paired_comparisons(swipes):
        if {c.a, c.b} == {a, b}:
            diff = c.difference if c.a == a else -c.difference
            detected = bool(c.pvalue_holm < alpha and (truth == 0 or np.sign(diff) == np.sign(truth)))
    return bool(omnibus), detected


def swipe_world(design: SwipeDesign, *, seed: int) -> SwipeWorld:
    """The simulated catalog of a power run: the design's categories, pool and set size, every condition
    with the same noise (equal lists), drawn from the generator seeded by (seed,)."""
    return make_world(
        dict.fromkeys(design.conditions, 1.0),
        rng=np.random.default_rng([seed]),
        categories=design.categories,
        items_per_category=max(ITEMS_PER_CATEGORY, design.pool_per_category, design.k + 1),
        pool_size=design.pool_per_category,
        k=design.k,
    )


def swipe_power_curve(
    design: SwipeDesign,
    participants: Sequence[int],
    *,
    shifts: Mapping[str, float],
    pair: tuple[str, str] | None = None,
    reps: int = 50,
    alpha: float = 0.05,
    target: float = 0.8,
    seed: int = 0,
) -> SwipePowerResult:
    """Estimated power of the swipe analysis for each number of participants. Study r of size n
    draws from the generator seeded by (seed, n, r); the simulated catalog from (seed,)."""
    pair = _checked(design, participants, shifts, pair, reps=reps, alpha=alpha, target=target)
    world = swipe_world(design, seed=seed)
    model = SwipeModel(shifts=dict(shifts), max_swipes=design.max_swipes, check_rate=design.check_rate)
    truth = shifts.get(pair[0], 0.0) - shifts.get(pair[1], 0.0)
    studies = studies_by_size(
        participants,
        reps,
        lambda n, r: swipe_rejects(
            simulate_swipes(world, model, n, rng=np.random.default_rng([seed, n, r])).swipes, pair, truth, alpha
        ),
    )
    points = [SwipePowerPoint(n, reps, *detection_rate(s[:, 0]), *detection_rate(s[:, 1])) for n, s in studies.items()]
    return SwipePowerResult(
        dict(shifts),
        pair,
        alpha,
        target,
        reps,
        seed,
        design,
        points,
        fewest_reaching(((p.participants, p.model_power) for p in points), target),
        fewest_reaching(((p.participants, p.pair_power) for p in points), target),
    )


def _checked(
    design: SwipeDesign,
    participants: Sequence[int],
    shifts: Mapping[str, float],
    pair: tuple[str, str] | None,
    *,
    reps: int,
    alpha: float,
    target: float,
) -> tuple[str, str]:
    """Refuse arguments out of range, naming them; returns the pair (default: largest shift vs smallest)."""
    conds = list(design.conditions)
    if len(conds) < 2:
        raise SimulationError(f"power compares conditions; the study has {conds}")
    if not participants or any(n < 2 for n in participants):
        raise SimulationError("participants must be a list of numbers of at least 2, e.g. 20,40,80")
    if reps < 1 or not 0 < alpha < 1 or not 0 < target < 1:
        raise SimulationError("reps must be at least 1, alpha and target between 0 and 1")
    unknown = set(shifts) - set(conds)
    if unknown:
        raise SimulationError(f"effects name condition(s) {sorted(unknown)} not in the study; valid: {conds}")
    pair = pair or default_pair(conds, dict(shifts))
    if len(set(pair)) != 2 or set(pair) - set(conds):
        raise SimulationError(f"pair must name two different conditions of the study; valid: {conds}")
    return pair
