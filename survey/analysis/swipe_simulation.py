"""Simulated swipe studies in the export's schema (tables ``swipes`` and ``swipe_rounds``), with the true
values they were drawn from; pure numpy/pandas, no database. For validating :mod:`survey.analysis.swipe_stats`.

The world (:func:`make_world`, drawn once, like a study's catalog): every category has ``items_per_category``
items at latent positions drawn from a 2-D standard normal, and a pool of ``pool_size`` of them that the
choose phase shows. A condition with noise ``sd`` sees the positions as ``position + sd * Z``, with one
standard-normal field ``Z`` shared by all conditions (common random numbers: two conditions with the same
``sd`` produce the same lists, an exact null; a smaller ``sd`` is nearer the truth); its top-k for a
reference are the k items of the category nearest the reference in its view (the reference excluded).
``sd = inf`` is a random recommender: k items of the category drawn at random per reference.

The participants (:func:`simulate_swipes`, :class:`SwipeModel`): each has an intercept ``u ~ N(0,
participant_sd)`` and, per category, a taste point ``t ~ N(0, taste_sd)`` in 2-D. The probability of liking
item ``i`` is ``sigmoid(intercept - slope * |x_i - t| + u [+ shift[condition] for judged items])``;
a share ``inattentive`` of participants likes every product with probability 1/2. One round per category
(in random order); the conditions rotate within each participant across rounds (participant offsets
balanced across participants). Choose phase: the pool in random order until the first like, or
``max_swipes`` swipes without one (outcome ``no_like``, no judged set). Judge phase: the condition's top-k of
the reference, in rank order; with probability ``check_rate`` an item of another category is inserted at a
random position (positions then run 1..k+1; an attentive participant likes it with probability
``check_like``). With probability ``rating_rate`` a judged round is rated
``clip(round(7 - 2 * mean distance of the set to the reference + N(0, rating_noise)), 1, 7)``.
A share ``dropout`` of participants stops at a uniformly drawn point of a uniformly drawn round: that round
is ``unfinished`` (its rows up to there kept), later rounds are absent.

True values (:class:`SwipeTruth`), from the like probabilities of the products actually shown: per
condition, the mean probability over judged non-check products; the base rate, the mean probability over
choose-phase products (the swipe-weighted rate that pooled likes / swipes estimates: by the optional-stopping
identity E[likes] = E[sum of the shown products' probabilities] whatever the stopping rule); and the
participant-round mean of the pool's mean probability (the unweighted base rate, which differs from the
former when participants differ). :func:`simulate_swipes` gives them for the simulated sample;
:func:`population_truth` for the population (a large simulated sample, same world): what a study's
confidence intervals are meant to cover, since they resample participants and not the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

SWIPE_COLUMNS = (
    "participant",
    "round",
    "category",
    "phase",
    "seq",
    "product",
    "reference",
    "position",
    "condition",
    "method",
    "segmenter",
    "is_check",
    "liked",
    "response_ms",
)
ROUND_COLUMNS = (
    "participant",
    "round",
    "category",
    "condition",
    "method",
    "segmenter",
    "outcome",
    "reference",
    "choose_swipes",
    "rating",
    "check_failed",
)


@dataclass(frozen=True)
class SwipeWorld:
    """A simulated catalog: ``positions[c, i]`` the latent 2-D position of item ``i`` of category ``c``,
    ``pool[c]`` the items its choose phase shows, ``top_k[j, c, i]`` condition ``j``'s top-k for reference
    ``i`` of category ``c`` (item indices, rank order)."""

    categories: tuple[str, ...]
    conditions: tuple[str, ...]
    noise_sd: tuple[float, ...]
    positions: np.ndarray  # n_categories x n_items x 2
    pool: np.ndarray  # n_categories x pool_size
    top_k: np.ndarray  # n_conditions x n_categories x n_items x k

    @property
    def k(self) -> int:
        """Products per judged set (before a check)."""
        return int(self.top_k.shape[-1])

    def item_id(self, category: np.ndarray, item: np.ndarray) -> np.ndarray:
        """The catalog ids ``"<category>-<item:03d>"`` of items (index arrays of the same shape)."""
        names = np.asarray(self.categories, dtype=object)[category]
        return np.array([f"{c}-{i:03d}" for c, i in zip(names.ravel(), np.ravel(item), strict=True)], dtype=object)


def make_world(
    noise_sd: Mapping[str, float],
    *,
    rng: np.random.Generator,
    categories: tuple[str, ...] = ("shirts", "mugs", "shoes", "lamps"),
    items_per_category: int = 60,
    pool_size: int = 12,
    k: int = 5,
) -> SwipeWorld:
    """A world for the conditions ``noise_sd`` ({"method/segmenter": noise sd of its view of the positions};
    0 = perfect, ``inf`` = random lists). Raises ValueError for impossible sizes or malformed names."""
    if not noise_sd:
        raise ValueError("no conditions: give noise_sd as {'method/segmenter': sd, ...}")
    bad = [c for c in noise_sd if c.count("/") != 1]
    if bad:
        raise ValueError(f"conditions must be named 'method/segmenter', got {bad}")
    if any(not (sd >= 0) for sd in noise_sd.values()):
        raise ValueError(f"noise sd must be >= 0 (inf for random lists), got {dict(noise_sd)}")
    if len(categories) < 2:
        raise ValueError("at least 2 categories are needed (the attention check shows another category's item)")
    if not 1 <= k < items_per_category or not 1 <= pool_size <= items_per_category:
        sizes = f"k={k}, pool_size={pool_size}, items_per_category={items_per_category}"
        raise ValueError(f"need 1 <= k < items_per_category and 1 <= pool_size <= items_per_category, got {sizes}")
    n_cat, n = len(categories), items_per_category
    positions = rng.standard_normal((n_cat, n, 2))
    z = rng.standard_normal((n_cat, n, 2))
    pool = np.argsort(rng.random((n_cat, n)), axis=1)[:, :pool_size]
    top = np.empty((len(noise_sd), n_cat, n, k), dtype=np.int64)
    for j, sd in enumerate(noise_sd.values()):
        if np.isinf(sd):
            score = rng.random((n_cat, n, n))
        else:
            view = positions + sd * z
            score = np.linalg.norm(view[:, :, None, :] - view[:, None, :, :], axis=-1)
        score[:, np.arange(n), np.arange(n)] = np.inf  # never the reference itself
        top[j] = np.argsort(score, axis=-1, kind="stable")[..., :k]
    return SwipeWorld(
        tuple(categories), tuple(noise_sd), tuple(float(v) for v in noise_sd.values()), positions, pool, top
    )


@dataclass(frozen=True)
class SwipeModel:
    """How simulated participants answer (see the module docstring)."""

    intercept: float = 0.5
    slope: float = 1.5
    participant_sd: float = 0.5
    taste_sd: float = 0.7
    shifts: Mapping[str, float] = field(default_factory=dict)  # logit shift of a condition's judged items
    max_swipes: int = 10
    check_rate: float = 0.25
    check_like: float = 0.05
    inattentive: float = 0.0
    rating_rate: float = 1.0
    rating_noise: float = 1.0
    dropout: float = 0.0


@dataclass(frozen=True)
class SwipeTruth:
    """True values (see the module docstring): ``like_rate`` and lifts per condition, the swipe-weighted
    ``base_rate`` (pooled likes / swipes estimates it) and the participant-round mean ``base_rate_mean``."""

    like_rate: Mapping[str, float]
    base_rate: float
    base_rate_mean: float
    lift_ratio: Mapping[str, float]
    lift_difference: Mapping[str, float]


@dataclass(frozen=True)
class SimulatedSwipes:
    """A simulated study: the export's two tables, the sample's true values, the inattentive participants."""

    swipes: pd.DataFrame
    swipe_rounds: pd.DataFrame
    truth: SwipeTruth
    inattentive: tuple[int, ...]


@dataclass(frozen=True)
class _Rounds:
    """Every planned round of every participant as arrays (n participants x R rounds [x slots])."""

    category: np.ndarray  # n x R
    condition: np.ndarray  # n x R
    shown: np.ndarray  # n x R x M: pool item indices in the order shown
    choose_p: np.ndarray  # n x R x M: like probabilities
    choose_liked: np.ndarray  # n x R x M
    swipes: np.ndarray  # n x R: choose-phase swipes before the stopping rule (the like included)
    has_like: np.ndarray  # n x R
    reference: np.ndarray  # n x R: item index (meaningless without a like)
    slot_item: np.ndarray  # n x R x (k+1): judged item in display order (check: other category's item)
    slot_check: np.ndarray  # n x R x (k+1)
    slot_valid: np.ndarray  # n x R x (k+1)
    slot_p: np.ndarray  # n x R x (k+1)
    slot_liked: np.ndarray  # n x R x (k+1)
    check_category: np.ndarray  # n x R
    rating: np.ndarray  # n x R, float, nan = not rated
    pool_mean_p: np.ndarray  # n x R: the pool's mean like probability (the unweighted base rate)
    keep_rows: np.ndarray  # n x R: rows of the round kept (in round order: choose, then judge)
    kept_rounds: np.ndarray  # n x R: the round exists (not after a dropout)
    inattentive: np.ndarray  # n


def _validate(world: SwipeWorld, model: SwipeModel, n_participants: int) -> None:
    """ValueError naming what is wrong with the arguments of :func:`simulate_swipes`."""
    if n_participants < 1 or model.max_swipes < 1:
        raise ValueError(f"n_participants and max_swipes must be >= 1, got {n_participants}, {model.max_swipes}")
    unknown = set(model.shifts) - set(world.conditions)
    if unknown:
        raise ValueError(f"shifts name conditions the world lacks: {sorted(unknown)}; it has {world.conditions}")
    for name in ("check_rate", "check_like", "inattentive", "rating_rate", "dropout"):
        if not 0 <= getattr(model, name) <= 1:
            raise ValueError(f"{name} is a probability in [0, 1], got {getattr(model, name)}")


def _choose(world: SwipeWorld, model: SwipeModel, cat, u, taste, inatt, rng) -> dict[str, np.ndarray]:
    """The choose phase of every round: order shown, probabilities, likes, stopping point, reference."""
    n, r = cat.shape
    m = min(model.max_swipes, world.pool.shape[1])
    order = np.argsort(rng.random((n, r, world.pool.shape[1])), axis=-1)
    pool_items = world.pool[cat]  # n x R x pool
    shown = np.take_along_axis(pool_items, order, axis=-1)[..., :m]
    t = taste[np.arange(n)[:, None], cat]  # n x R x 2
    pool_d = np.linalg.norm(world.positions[cat[..., None], pool_items] - t[:, :, None, :], axis=-1)
    pool_p = expit(model.intercept - model.slope * pool_d + u[:, None, None])
    pool_p = np.where(inatt[:, None, None], 0.5, pool_p)
    p = np.take_along_axis(pool_p, order, axis=-1)[..., :m]
    liked = rng.random(p.shape) < p
    has = liked.any(axis=-1)
    first = liked.argmax(axis=-1)
    ref = np.take_along_axis(shown, first[..., None], axis=-1)[..., 0]
    swipes = np.where(has, first + 1, m)
    pool_mean_p = pool_p.mean(axis=-1)
    return dict(
        shown=shown,
        choose_p=p,
        choose_liked=liked,
        swipes=swipes,
        has_like=has,
        reference=ref,
        taste=t,
        pool_mean_p=pool_mean_p,
    )


def _judge(world: SwipeWorld, model: SwipeModel, cat, cond, ch, u, inatt, rng) -> dict[str, np.ndarray]:
    """The judge phase: the condition's top-k of the reference in rank order, maybe a check inserted."""
    n, r = cat.shape
    k = world.k
    items = world.top_k[cond, cat, ch["reference"]]  # n x R x k
    d = np.linalg.norm(world.positions[cat[..., None], items] - ch["taste"][:, :, None, :], axis=-1)
    shift = np.array([model.shifts.get(c, 0.0) for c in world.conditions])[cond]
    p = expit(model.intercept - model.slope * d + u[:, None, None] + shift[..., None])
    p = np.where(inatt[:, None, None], 0.5, p)
    with_check = ch["has_like"] & (rng.random((n, r)) < model.check_rate)
    check_pos = rng.integers(0, k + 1, size=(n, r))
    n_cat = len(world.categories)
    check_cat = (cat + rng.integers(1, n_cat, size=(n, r))) % n_cat
    check_item = rng.integers(0, world.positions.shape[1], size=(n, r))
    slot = np.arange(k + 1)
    is_check = with_check[..., None] & (slot == check_pos[..., None])
    real = np.minimum(slot - (with_check[..., None] & (slot > check_pos[..., None])), k - 1)
    valid = ch["has_like"][..., None] & (slot < k + with_check[..., None])
    slot_item = np.where(is_check, check_item[..., None], np.take_along_axis(items, real, axis=-1))
    check_p = np.where(inatt, 0.5, model.check_like)[:, None, None]
    slot_p = np.where(is_check, check_p, np.take_along_axis(p, real, axis=-1))
    slot_liked = rng.random(slot_p.shape) < slot_p
    ref_d = np.linalg.norm(
        world.positions[cat[..., None], items] - world.positions[cat, ch["reference"]][:, :, None, :], axis=-1
    ).mean(axis=-1)
    rating = np.clip(np.rint(7 - 2 * ref_d + rng.normal(0, model.rating_noise, (n, r))), 1, 7)
    rated = ch["has_like"] & (rng.random((n, r)) < model.rating_rate)
    rating = np.where(rated, rating, np.nan)
    return dict(
        slot_item=slot_item,
        slot_check=is_check,
        slot_valid=valid,
        slot_p=slot_p,
        slot_liked=slot_liked,
        check_category=check_cat,
        rating=rating,
    )


def _simulate_rounds(world: SwipeWorld, model: SwipeModel, n: int, rng: np.random.Generator) -> _Rounds:
    """Every round of ``n`` participants as arrays (:class:`_Rounds`)."""
    _validate(world, model, n)
    r, c = len(world.categories), len(world.conditions)
    u = rng.normal(0, model.participant_sd, n)
    inatt = rng.random(n) < model.inattentive
    taste = rng.normal(0, model.taste_sd, (n, r, 2))
    cat = np.argsort(rng.random((n, r)), axis=1)
    offset = rng.permutation(n) % c  # rotation start, balanced across participants
    cond = (offset[:, None] + np.arange(r)) % c
    ch = _choose(world, model, cat, u, taste, inatt, rng)
    j = _judge(world, model, cat, cond, ch, u, inatt, rng)
    del ch["taste"]
    total = ch["swipes"] + j["slot_valid"].sum(axis=-1)
    drops = rng.random(n) < model.dropout
    stop_round = np.where(drops, rng.integers(0, r, n), r)
    cut = np.floor(rng.random(n) * total[np.arange(n), np.minimum(stop_round, r - 1)]).astype(np.int64)
    rounds = np.arange(r)
    keep = np.where(rounds < stop_round[:, None], total, np.where(rounds == stop_round[:, None], cut[:, None], 0))
    kept = rounds <= stop_round[:, None]
    return _Rounds(category=cat, condition=cond, keep_rows=keep, kept_rounds=kept, inattentive=inatt, **ch, **j)


def _kept_masks(s: _Rounds) -> tuple[np.ndarray, np.ndarray]:
    """Which choose rows (n x R x M) and judge slots (n x R x (k+1)) were answered and kept."""
    t = np.arange(s.shown.shape[-1])
    choose = (t < s.swipes[..., None]) & (t < s.keep_rows[..., None])
    order_in_set = np.cumsum(s.slot_valid, axis=-1) - 1  # display index among the valid slots
    judge = s.slot_valid & (s.swipes[..., None] + order_in_set < s.keep_rows[..., None])
    return choose, judge


def _truth(world: SwipeWorld, s: _Rounds) -> SwipeTruth:
    """The true values of :class:`SwipeTruth` from the probabilities of the rows kept in ``s``."""
    choose, judge = _kept_masks(s)
    real = judge & ~s.slot_check
    cond = np.broadcast_to(s.condition[..., None], real.shape)
    like = {}
    for j, name in enumerate(world.conditions):
        sel = real & (cond == j)
        like[name] = float(s.slot_p[sel].mean()) if sel.any() else float("nan")
    base = float(s.choose_p[choose].mean()) if choose.any() else float("nan")
    base_mean = float(s.pool_mean_p[s.kept_rounds].mean())
    return SwipeTruth(
        like, base, base_mean, {c: v / base for c, v in like.items()}, {c: v - base for c, v in like.items()}
    )


def population_truth(
    world: SwipeWorld, model: SwipeModel, *, rng: np.random.Generator, n_participants: int = 20_000
) -> SwipeTruth:
    """The true values for the population of participants :class:`SwipeModel` describes, in this world:
    those of one large simulated sample (Monte Carlo error about 0.002 on the rates at the default size)."""
    return _truth(world, _simulate_rounds(world, model, n_participants, rng))


def _choose_frame(world: SwipeWorld, s: _Rounds, mask: np.ndarray, ms: np.ndarray) -> pd.DataFrame:
    """The kept choose-phase rows in the export's columns."""
    p, r, t = np.nonzero(mask)
    cat = s.category[p, r]
    return pd.DataFrame(
        {
            "participant": p + 1,
            "round": r + 1,
            "category": np.asarray(world.categories, dtype=object)[cat],
            "phase": "choose",
            "seq": t + 1,
            "product": world.item_id(cat, s.shown[p, r, t]),
            "reference": None,
            "position": pd.array([pd.NA] * len(p), dtype="Int64"),
            "condition": None,
            "method": None,
            "segmenter": None,
            "is_check": False,
            "liked": s.choose_liked[p, r, t],
            "response_ms": ms[: len(p)],
        }
    )


def _judge_frame(world: SwipeWorld, s: _Rounds, mask: np.ndarray, ms: np.ndarray) -> pd.DataFrame:
    """The kept judge-phase rows in the export's columns (check rows without condition)."""
    p, r, slot = np.nonzero(mask)
    cat = s.category[p, r]
    check = s.slot_check[p, r, slot]
    position = np.cumsum(s.slot_valid, axis=-1)[p, r, slot]
    cond = np.asarray(world.conditions, dtype=object)[s.condition[p, r]]
    cond[check] = None
    parts = [c.split("/") if c is not None else [None, None] for c in cond.tolist()]
    return pd.DataFrame(
        {
            "participant": p + 1,
            "round": r + 1,
            "category": np.asarray(world.categories, dtype=object)[cat],
            "phase": "judge",
            "seq": position,
            "product": world.item_id(np.where(check, s.check_category[p, r], cat), s.slot_item[p, r, slot]),
            "reference": world.item_id(cat, s.reference[p, r]),
            "position": pd.array(position, dtype="Int64"),
            "condition": cond,
            "method": [m for m, _ in parts],
            "segmenter": [g for _, g in parts],
            "is_check": check,
            "liked": s.slot_liked[p, r, slot],
            "response_ms": ms[: len(p)],
        }
    )


def _rounds_frame(world: SwipeWorld, s: _Rounds, choose: np.ndarray, judge: np.ndarray) -> pd.DataFrame:
    """One row per round that exists, in the export's columns."""
    p, r = np.nonzero(s.kept_rounds)
    n_set = s.slot_valid.sum(axis=-1)
    complete = s.keep_rows == s.swipes + n_set
    outcome = np.where(~complete[p, r], "unfinished", np.where(s.has_like[p, r], "judged", "no_like"))
    chosen = s.has_like[p, r] & (s.keep_rows[p, r] >= s.swipes[p, r])
    cat = s.category[p, r]
    cond = np.asarray(world.conditions, dtype=object)[s.condition[p, r]]
    check_answered = (judge & s.slot_check).any(axis=-1)[p, r]
    check_liked = (judge & s.slot_check & s.slot_liked).any(axis=-1)[p, r]
    rating = np.where(outcome == "judged", s.rating[p, r], np.nan)
    return pd.DataFrame(
        {
            "participant": p + 1,
            "round": r + 1,
            "category": np.asarray(world.categories, dtype=object)[cat],
            "condition": cond,
            "method": [c.split("/")[0] for c in cond],
            "segmenter": [c.split("/")[1] for c in cond],
            "outcome": outcome,
            "reference": [
                x if ok else None for x, ok in zip(world.item_id(cat, s.reference[p, r]), chosen, strict=True)
            ],
            "choose_swipes": choose.sum(axis=-1)[p, r],
            "rating": pd.array([None if np.isnan(x) else int(x) for x in rating], dtype="Int64"),
            "check_failed": np.where(check_answered, check_liked, None),
        }
    )


def simulate_swipes(
    world: SwipeWorld, model: SwipeModel, n_participants: int, *, rng: np.random.Generator
) -> SimulatedSwipes:
    """A simulated study of ``n_participants`` in ``world``: the ``swipes`` and ``swipe_rounds`` tables
    (the export's columns; participants 1..n, rounds 1-based), the sample's true values, the inattentive
    participants. The same ``rng`` state gives the same study."""
    s = _simulate_rounds(world, model, n_participants, rng)
    choose, judge = _kept_masks(s)
    ms = np.rint(rng.lognormal(np.log(900), 0.4, int(choose.sum() + judge.sum()))).astype(np.int64)
    rows = pd.concat(
        [_choose_frame(world, s, choose, ms), _judge_frame(world, s, judge, ms[int(choose.sum()) :])], ignore_index=True
    )
    phase_rank = (rows["phase"] == "judge").astype(int)
    rows = rows.assign(_ph=phase_rank).sort_values(["participant", "round", "_ph", "seq"], kind="stable")
    rows = rows.drop(columns="_ph").reset_index(drop=True)
    rows["response_ms"] = rows["response_ms"].astype("Int64")
    rounds = _rounds_frame(world, s, choose, judge)
    inattentive = tuple(int(i) + 1 for i in np.flatnonzero(s.inattentive))
    return SimulatedSwipes(rows[list(SWIPE_COLUMNS)], rounds[list(ROUND_COLUMNS)], _truth(world, s), inattentive)
