"""The database side of the assignment (the algorithm is :mod:`survey.participants.assignment`): a study's units
as the database holds them, the maintained trial counts per unit, and a new participant's trials
planned and stored.

:func:`store_trials` runs inside :func:`survey.participants.service.start_participant`, which holds the study-row
lock. The counts live in ``unit_counts`` (:class:`db.models.UnitCount`), one row per judged unit, so
a start reads one short table whatever the number of participants, instead of counting every trial
of the study (which made each participant of a large study slower to start than the one before).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from db.models import CatalogItem, Condition, Grid, GridCondition, Response, Trial, UnitCount
from survey.participants import adaptive, assignment
from survey.protocols import get_protocol
from survey.study.config import StudyConfig


class StudyFull(Exception):
    """No unit needs another judgement (``judgements_per_unit``); the service refuses the newcomer."""


def grids_by_reference(s: Session, study_id: int) -> tuple[dict[int, list[str]], dict[int, str]]:
    """The condition grids of each reference of the researcher's protocols (not those of swipe
    pool products that are no such reference), and each reference's catch grid."""
    grids: dict[int, list[str]] = {}
    catch: dict[int, str] = {}
    for gid, ref, kind in s.execute(
        select(Grid.id, Grid.reference_id, Grid.kind)
        .join(CatalogItem, CatalogItem.id == Grid.reference_id)
        .where(Grid.study_id == study_id, CatalogItem.is_reference.is_(True))
    ):
        if kind == "catch":
            catch[ref] = gid
        else:
            grids.setdefault(ref, []).append(gid)
    return grids, catch


def grid_conditions(s: Session, study_id: int) -> dict[str, list[str]]:
    """The condition labels that produced each grid (server side only: spreads conditions within a
    participant's block; nothing of it reaches a participant)."""
    out: dict[str, list[str]] = {}
    for gid, label in s.execute(
        select(GridCondition.grid_id, Condition.label)
        .join(Condition, Condition.id == GridCondition.condition_id)
        .where(Condition.study_id == study_id)
    ):
        out.setdefault(gid, []).append(label)
    return out


def swipe_arms(s: Session, study_id: int) -> dict[str, list[str]]:
    """Per category with a swipe pool, the conditions that made a grid for its pool products (the
    build gives every pool product a grid of every condition)."""
    arms: dict[str, list[str]] = {}
    for category, label in s.execute(
        select(CatalogItem.category, Condition.label)
        .distinct()
        .join(Grid, Grid.reference_id == CatalogItem.id)
        .join(GridCondition, GridCondition.grid_id == Grid.id)
        .join(Condition, Condition.id == GridCondition.condition_id)
        .where(CatalogItem.study_id == study_id, CatalogItem.in_swipe_pool.is_(True))
    ):
        arms.setdefault(category, []).append(label)
    return arms


def unit_pool(s: Session, study_id: int, protocols: tuple[str, ...]) -> assignment.UnitPool:
    grids, catch = grids_by_reference(s, study_id)
    arms = swipe_arms(s, study_id) if any(get_protocol(p).rounds for p in protocols) else None
    return assignment.unit_pool(grids, catch, protocols, grid_conditions(s, study_id), arms)


def unit_counts(s: Session, study_id: int) -> dict[str, int]:
    """Per unit key, the trials that count for balance: answered, or held by an active participant
    (attention checks and repeats not counted; units never assigned: absent)."""
    return dict(s.execute(select(UnitCount.unit, UnitCount.trials).where(UnitCount.study_id == study_id)).all())


def answered_counts(s: Session, study_id: int) -> dict[str, int]:
    """Answers stored per unit key (attention checks and repeats not counted; never assigned: absent)."""
    return dict(s.execute(select(UnitCount.unit, UnitCount.answered).where(UnitCount.study_id == study_id)).all())


def count_answer(s: Session, study_id: int, unit: str) -> int:
    """Add one answer of ``unit`` to its count; returns the new count. An increment in SQL, exact
    without the study lock (answers are stored without it)."""
    table = UnitCount.metadata.tables[UnitCount.__tablename__]
    return int(
        s.execute(
            update(table)
            .where(table.c.study_id == study_id, table.c.unit == unit)
            .values(answered=table.c.answered + 1)
            .returning(table.c.answered)
        ).scalar_one()
    )


def release_units(s: Session, study_id: int, participant_id: int) -> list[str]:
    """Give a leaving participant's unanswered real units back to the pool: each one's count of
    trials that count for balance drops by one. Returns the units released."""
    units = list(
        s.scalars(
            select(Trial.unit)
            .outerjoin(Response, Response.trial_id == Trial.id)
            .where(
                Trial.participant_id == participant_id,
                Trial.is_catch.is_(False),
                Trial.is_repeat.is_(False),
                Response.id.is_(None),
            )
        )
    )
    if units:  # a decrement, not the value read minus one: exact without the study lock
        table = UnitCount.metadata.tables[UnitCount.__tablename__]
        s.execute(
            update(table)
            .where(table.c.study_id == bindparam("sid"), table.c.unit == bindparam("key"))
            .values(trials=table.c.trials - 1),
            [{"sid": study_id, "key": u} for u in units],
        )
    return units


def fully_judged(s: Session, study_id: int, protocols: tuple[str, ...], judgements_per_unit: int) -> bool:
    """Every unit of the study has at least ``judgements_per_unit`` answers."""
    n_units = sum(len(units) for units in unit_pool(s, study_id, protocols).units.values())
    done = s.scalar(
        select(func.count()).where(UnitCount.study_id == study_id, UnitCount.answered >= judgements_per_unit)
    )
    return done is not None and done >= n_units


def _choosers(
    s: Session,
    study_id: int,
    participant_id: int,
    config: StudyConfig,
    counts: dict[str, int],
    rng: np.random.Generator,
) -> dict[str, Callable[[Sequence[assignment.Unit], int], list[assignment.Unit]]]:
    """The protocols whose units are not chosen least-judged first: pairwise with adaptive assignment,
    chosen (and recorded) by :func:`survey.participants.adaptive.choose_pairwise` under the caller's
    lock, with a seed drawn from ``rng`` (``rng.integers(2**31)``, only then)."""
    if config.pairwise_assignment != "adaptive":
        return {}
    return {
        "pairwise": partial(
            adaptive.choose_pairwise,
            s,
            study_id,
            participant_id,
            made_by=grid_conditions(s, study_id),
            counts=counts,
            floor=config.pairwise_adaptive_floor,
            seed=int(rng.integers(2**31)),
        )
    }


def store_trials(
    s: Session, study_id: int, participant_id: int, config: StudyConfig, rng: np.random.Generator
) -> list[assignment.Unit]:
    """Plan a new participant's trials from the current counts, insert them, and add them to the
    counts; returns the plan. Call it only while holding the study-row lock (see below)."""
    # The race this must not lose: two participants starting at once (two tabs, two app
    # processes) would both read the same counts, both pick the same least-judged units, and
    # each write its own count + 1, leaving the units unbalanced and the counts short. The
    # caller's study-row lock (PostgreSQL: a row lock; SQLite: the database write lock) makes
    # the read, the plan and the write below one step per participant, in every process.
    # Counts and trials are written in the caller's one transaction: both are stored, or
    # neither, so the counts always equal counting the trials (tests/test_survey.py checks it).
    pool = unit_pool(s, study_id, config.protocols)
    counts = unit_counts(s, study_id)
    if config.judgements_per_unit and all(
        counts.get(u.key, 0) >= config.judgements_per_unit for units in pool.units.values() for u in units
    ):
        raise StudyFull("every unit has the judgements it needs, answered or held by active participants")
    plan = assignment.plan_trials(
        pool,
        counts,
        protocols=config.protocols,
        trials_per_participant=config.trials_per_participant,
        attention_check_rate=config.attention_check_rate,
        rng=rng,
        repeat_rate=config.repeat_rate,
        choose=_choosers(s, study_id, participant_id, config, counts, rng),
    )
    s.add_all(
        Trial(
            participant_id=participant_id,
            position=pos,
            protocol=u.protocol,
            reference_id=None if get_protocol(u.protocol).rounds else u.reference,  # a round: chosen later
            grid_ids=list(u.grid_ids),
            unit=u.key,
            is_catch=u.is_catch,
            is_repeat=u.is_repeat,
            with_check=u.with_check,
        )
        for pos, u in enumerate(plan)
    )
    added: dict[str, int] = {}
    assignment.count_plan(added, plan)
    table = UnitCount.metadata.tables[UnitCount.__tablename__]  # the Table, for a plain multi-row UPDATE
    new = [{"study_id": study_id, "unit": key, "trials": n} for key, n in added.items() if key not in counts]
    seen = [{"sid": study_id, "key": key, "n": n} for key, n in added.items() if key in counts]
    if new:  # a primary-key conflict here would mean the lock was not held: it raises, nothing is stored
        s.execute(insert(table), new)
    if seen:  # an increment, not the value read plus n: exact even where a caller forgot the lock
        s.execute(
            update(table)
            .where(table.c.study_id == bindparam("sid"), table.c.unit == bindparam("key"))
            .values(trials=table.c.trials + bindparam("n")),
            seen,
        )
    return plan


def replay_adaptive(s: Session, study_id: int, config: StudyConfig) -> list[adaptive.Replay]:
    """Every recorded adaptive choice of the study, redone (:func:`survey.participants.adaptive.replay`)."""
    if "pairwise" not in config.protocols:
        return []
    units = unit_pool(s, study_id, ("pairwise",)).units["pairwise"]
    return adaptive.replay(s, study_id, units, grid_conditions(s, study_id), config)
