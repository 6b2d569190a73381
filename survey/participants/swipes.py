"""Swipe rounds: a shopper's choice of a product they like, then their verdict on the products
recommended for it. Called through :mod:`survey.participants.service`.

A round is one ``Trial`` of protocol ``swipe``, planned at consent with its category and condition
(its unit, ``swipe:<category>:<condition>``; :mod:`survey.participants.assignment`). Its screens:

1. *choose*: products of the category's swipe pool, one at a time, in an order drawn for this
   round (seeded by the study's seed, the participant and the round, so a reload or a second
   tab shows the same product); the participant likes it or not. With ``swipe.reference =
   "first_like"`` the first product liked becomes the round's reference; with ``"pick"`` the
   participant picks it among the products liked once ``pick_after`` are liked (or
   ``max_swipes`` are shown with at least one liked). ``max_swipes`` products (or the whole pool)
   without a like end the round without a reference.
2. *judge*: the products the round's condition recommends for that reference (its grid, blinded
   as every grid), one at a time beside the whole set; with an attention check, one product of
   another category (the first of the reference's catch grid) at a random place among them.
3. *rate* (only with ``swipe.rate_similarity``): one similarity rating of the set.

Every product shown is a ``Swipe`` row written when it is first shown and answered once (an
``UPDATE ... WHERE liked IS NULL``: a second submit, from a reload or a second tab, changes
nothing). The round's ``Response`` (the optional rating) is written when the round ends, through
:func:`survey.participants.answers.record_answer`, which counts the unit and completes the
participant's trials as for every protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import CatalogItem, Condition, Grid, GridCondition, Participant, Response, Study, Swipe, Trial
from survey.participants import lifecycle, protocol_parts
from survey.participants.answers import insert_ignore, owned_trial, record_answer, still_active
from survey.participants.records import study_of
from survey.protocols import arm_of
from survey.study.config import StudyConfig

Phase = Literal["choose", "pick", "judge", "rate"]


@dataclass(frozen=True)
class SwipeView:
    """What a swipe round shows now. ``swipe_id``: the product to answer (choose, judge);
    ``product_path``: its photo; ``reference_path``: the product chosen (judge, rate);
    ``set_paths``: the judged set in display order (judge, rate); ``position``: the product's
    place in it, 1-based (judge); ``liked_paths``: the products liked, to pick from (pick);
    ``shown``: products shown so far in the choose phase; ``max_swipes``: the round's limit."""

    phase: Phase
    swipe_id: int | None = None
    product_path: str | None = None
    reference_path: str | None = None
    set_paths: tuple[str, ...] = ()
    position: int | None = None
    liked_paths: tuple[str, ...] = ()
    shown: int = 0
    max_swipes: int = 0


def _round_rng(study: Study, t: Trial, stream: int) -> np.random.Generator:
    """The round's own generator: the same draws for the same round, whatever reloads happen."""
    seed = int(StudyConfig.from_dict(study.config).seed)
    return np.random.default_rng([seed, t.participant_id, t.position, stream])


def pool_order(s: Session, study: Study, t: Trial) -> list[int]:
    """The round's order of its category's pool products (catalog row ids)."""
    pool = list(
        s.scalars(
            select(CatalogItem.id)
            .where(
                CatalogItem.study_id == study.id,
                CatalogItem.category == arm_of(t.unit)[0],
                CatalogItem.in_swipe_pool.is_(True),
            )
            .order_by(CatalogItem.id)
        )
    )
    if not pool:
        raise RuntimeError(f"swipe round {t.id}: category {arm_of(t.unit)[0]!r} has no swipe pool; rebuild the study")
    return [pool[i] for i in _round_rng(study, t, 0).permutation(len(pool))]


def judged_set(s: Session, study: Study, t: Trial) -> list[tuple[int, str, bool]]:
    """(catalog row id, grid id, is the check) of each product of the round's judged set, in display
    order: the grid's products, and with a check the catch grid's first product at the round's
    place for it."""
    grids = {g.id: g for g in s.scalars(select(Grid).where(Grid.id.in_(t.grid_ids)))}
    grid = grids[t.grid_ids[0]]
    shown = [(item, grid.id, False) for item in grid.item_ids]
    if t.with_check:
        catch = grids[t.grid_ids[1]]
        at = int(_round_rng(study, t, 1).integers(len(shown) + 1))
        shown.insert(at, (catch.item_ids[0], catch.id, True))
    return shown


def _rows(s: Session, t: Trial, phase: str) -> list[Swipe]:
    return list(s.scalars(select(Swipe).where(Swipe.trial_id == t.id, Swipe.phase == phase).order_by(Swipe.seq)))


def _show(s: Session, t: Trial, phase: str, seq: int, item: int, now: datetime, **extra: object) -> Swipe:
    """The round's ``seq``-th product of ``phase``, written now unless a concurrent request wrote it."""
    insert_ignore(
        s,
        Swipe,
        {"participant_id": t.participant_id, "trial_id": t.id, "phase": phase, "seq": seq, "item_id": item}
        | {"shown_at": now, **extra},
    )
    row = s.scalar(select(Swipe).where(Swipe.trial_id == t.id, Swipe.phase == phase, Swipe.seq == seq))
    assert row is not None  # written just now, or by the request that won the race
    return row


def current(s: Session, study: Study, t: Trial, config: StudyConfig, now: datetime) -> SwipeView:
    """What round ``t`` (unanswered) of ``study`` shows now; writes the next product when none is
    waiting (the round's start, ``t.shown_at``, with the first)."""
    if t.shown_at is None:
        t.shown_at = now
    if t.reference_id is None:
        return _choose_view(s, study, t, config, now)
    judged = _rows(s, t, "judge")
    waiting = next((r for r in judged if r.liked is None), None)
    shown = judged_set(s, study, t)
    if waiting is None and len(judged) < len(shown):
        item, grid, check = shown[len(judged)]
        at = len(judged) + 1
        waiting = _show(s, t, "judge", at, item, now, grid_id=grid, position=at, is_check=check)
    paths = _paths(s, [t.reference_id, *(i for i, _, _ in shown)])
    reference, products = paths[t.reference_id], tuple(paths[i] for i, _, _ in shown)
    if waiting is None:  # every product judged: the set's rating is what is left
        return SwipeView("rate", reference_path=reference, set_paths=products)
    return SwipeView(
        "judge",
        waiting.id,
        paths[waiting.item_id],
        reference_path=reference,
        set_paths=products,
        position=waiting.position,
    )


def _choose_view(s: Session, study: Study, t: Trial, config: StudyConfig, now: datetime) -> SwipeView:
    rows = _rows(s, t, "choose")
    waiting = next((r for r in rows if r.liked is None), None)
    order = pool_order(s, study, t)
    limit = min(config.swipe_max_swipes, len(order))
    if waiting is None:
        liked = [r.item_id for r in rows if r.liked]
        if liked and (len(liked) >= config.swipe_pick_after or len(rows) >= limit):  # pick mode: time to pick
            paths = _paths(s, liked)
            return SwipeView("pick", liked_paths=tuple(paths[i] for i in liked), shown=len(rows), max_swipes=limit)
        if len(rows) >= limit:
            raise RuntimeError(f"swipe round {t.id} showed {len(rows)} products without an end; the round is corrupt")
        waiting = _show(s, t, "choose", len(rows) + 1, order[len(rows)], now)
        rows.append(waiting)
    path = _paths(s, [waiting.item_id])[waiting.item_id]
    return SwipeView("choose", waiting.id, path, shown=len(rows), max_swipes=limit)


def _paths(s: Session, ids: list[int]) -> dict[int, str]:
    return {i: path for i, path in s.execute(select(CatalogItem.id, CatalogItem.path).where(CatalogItem.id.in_(ids)))}


# --- answers ------------------------------------------------------------------------------------


def _answer(s: Session, swipe: Swipe, liked: bool, now: datetime) -> bool:
    """Set ``liked`` once: ``False`` when it was set already (a reload, a second tab)."""
    shown = lifecycle.as_utc(swipe.shown_at)
    done = s.execute(
        update(Swipe)
        .where(Swipe.id == swipe.id, Swipe.liked.is_(None))
        .values(liked=liked, answered_at=now, response_ms=int((now - shown).total_seconds() * 1000))
        .returning(Swipe.id)
    ).first()
    s.refresh(swipe)
    return done is not None


def submit_swipe(
    make_session: sessionmaker[Session], token: str, swipe_id: int, liked: bool, *, now: datetime | None = None
) -> bool:
    """Like (``True``) or not (``False``) the product of swipe ``swipe_id``; ``False`` when it was
    answered already or the participant may no longer answer (nothing changes). Moves the round
    on: a like that chooses the reference, the last judged product, the last allowed swipe."""
    if not isinstance(liked, bool):
        raise ValueError(f"liked must be true or false, got {liked!r}")
    with make_session.begin() as s:
        swipe = s.get(Swipe, swipe_id) if isinstance(swipe_id, int) and not isinstance(swipe_id, bool) else None
        if swipe is None:
            raise PermissionError("this swipe does not belong to this participant")
        t, p = owned_trial(s, token, swipe.trial_id)
        now = now or datetime.now(UTC)
        config = StudyConfig.from_dict(study_of(s, p).config)
        if not still_active(s, p, config, now) or not _answer(s, swipe, liked, now):
            return False
        p.last_active_at = now
        if swipe.phase == "choose":
            _after_choose(s, t, p, swipe, config, now)
        elif swipe.is_check and protocol_parts.failed_check("swipe", t.grid_ids, t.grid_ids[1], {"liked": liked}):
            p.flags = [*(p.flags or []), f"failed_check:{t.position}"]
        if swipe.phase == "judge" and not config.swipe_rate_similarity and _all_judged(s, study_of(s, p), t):
            record_answer(s, t, p, {"rating": None}, now)
        return True


def _after_choose(s: Session, t: Trial, p: Participant, swipe: Swipe, config: StudyConfig, now: datetime) -> None:
    """A like in first_like mode chooses the reference; a round at its limit without a like ends."""
    if swipe.liked and config.swipe_reference == "first_like":
        choose_reference(s, t, swipe.item_id)
        return
    study = study_of(s, p)
    rows = _rows(s, t, "choose")
    if len(rows) >= min(config.swipe_max_swipes, len(pool_order(s, study, t))) and not any(r.liked for r in rows):
        record_answer(s, t, p, {"rating": None}, now)  # the round ends without a reference


def choose_reference(s: Session, t: Trial, item: int) -> None:
    """Make ``item`` round ``t``'s reference: its grid of the round's condition (and, with a check,
    its catch grid) become the round's grids."""
    grid = s.scalar(
        select(Grid.id)
        .join(GridCondition, GridCondition.grid_id == Grid.id)
        .join(Condition, Condition.id == GridCondition.condition_id)
        .where(Grid.reference_id == item, Grid.kind == "condition", Condition.label == arm_of(t.unit)[1])
    )
    if grid is None:
        raise RuntimeError(f"pool product {item} has no grid of {arm_of(t.unit)[1]}; the study build is incomplete")
    grids = [grid]
    if t.with_check:
        catch = s.scalar(select(Grid.id).where(Grid.reference_id == item, Grid.kind == "catch"))
        if catch is None:
            raise RuntimeError(f"pool product {item} has no catch grid; the study build is incomplete")
        grids.append(catch)
    t.reference_id, t.grid_ids = item, grids


def _all_judged(s: Session, study: Study, t: Trial) -> bool:
    answered = s.scalar(
        select(func.count(Swipe.id)).where(Swipe.trial_id == t.id, Swipe.phase == "judge", Swipe.liked.is_not(None))
    )
    return answered == len(judged_set(s, study, t))


def submit_pick(
    make_session: sessionmaker[Session], token: str, trial_id: int, choice: int, *, now: datetime | None = None
) -> bool:
    """Pick the ``choice``-th (0-based, in the order shown) of the products liked as round
    ``trial_id``'s reference (``reference = "pick"``); ``False`` when it was picked already."""
    with make_session.begin() as s:
        t, p = owned_trial(s, token, trial_id)
        now = now or datetime.now(UTC)
        config = StudyConfig.from_dict(study_of(s, p).config)
        if t.protocol != "swipe" or config.swipe_reference != "pick":
            raise ValueError(f"trial {trial_id} has no pick: it is not a swipe round of a study with reference = pick")
        if not still_active(s, p, config, now) or t.reference_id is not None:
            return False
        rows = _rows(s, t, "choose")
        liked = [r for r in rows if r.liked]
        if not (isinstance(choice, int) and not isinstance(choice, bool) and 0 <= choice < len(liked)):
            raise ValueError(f"choice must be a product number from 1 to {len(liked)}")
        last = max(r.answered_at for r in rows if r.answered_at is not None)
        _show(s, t, "pick", 1, liked[choice].item_id, last)  # the pick screen appeared with the last answer
        pick = _rows(s, t, "pick")[0]
        if not _answer(s, pick, True, now):
            return False  # a concurrent pick won
        p.last_active_at = now
        choose_reference(s, t, pick.item_id)
        return True


def submit_set_rating(
    make_session: sessionmaker[Session], token: str, trial_id: int, rating: int, *, now: datetime | None = None
) -> bool:
    """The similarity rating of round ``trial_id``'s judged set (1-7), which ends the round; refused
    before every product of the set is judged; ``False`` when the round has its answer already."""
    with make_session.begin() as s:
        t, p = owned_trial(s, token, trial_id)
        if t.protocol != "swipe":
            raise ValueError(f"trial {trial_id} is a {t.protocol} trial, not a swipe round")
        answer = protocol_parts.answer_columns("swipe", {"rating": rating}, t.grid_ids)
        now = now or datetime.now(UTC)
        config = StudyConfig.from_dict(study_of(s, p).config)
        if not still_active(s, p, config, now):
            return False
        if s.scalar(select(Response.id).where(Response.trial_id == t.id)) is not None:
            return False
        if t.reference_id is None or not _all_judged(s, study_of(s, p), t):
            raise ValueError("the set is rated after each of its products is judged")
        return record_answer(s, t, p, answer, now)
