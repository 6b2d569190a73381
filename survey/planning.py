"""The database side of the assignment (the algorithm is :mod:`survey.assignment`): a study's units
as the database holds them, the maintained trial counts per unit, and a new participant's trials
planned and stored.

:func:`store_trials` runs inside :func:`survey.service.start_participant`, which holds the study-row
lock. The counts live in ``unit_counts`` (:class:`db.models.UnitCount`), one row per judged unit, so
a start reads one short table whatever the number of participants, instead of counting every trial
of the study (which made each participant of a large study slower to start than the one before).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from db.models import Grid, Trial, UnitCount

from . import assignment
from .config import StudyConfig


def grids_by_reference(s: Session, study_id: int) -> tuple[dict[int, list[str]], dict[int, str]]:
    """The condition grids of each reference, and each reference's catch grid."""
    grids: dict[int, list[str]] = {}
    catch: dict[int, str] = {}
    for gid, ref, kind in s.execute(select(Grid.id, Grid.reference_id, Grid.kind).where(Grid.study_id == study_id)):
        if kind == "catch":
            catch[ref] = gid
        else:
            grids.setdefault(ref, []).append(gid)
    return grids, catch


def unit_counts(s: Session, study_id: int) -> dict[str, int]:
    """Trials assigned so far per unit key, attention checks not counted (units never assigned: absent)."""
    return dict(s.execute(select(UnitCount.unit, UnitCount.trials).where(UnitCount.study_id == study_id)).all())


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
    grids, catch = grids_by_reference(s, study_id)
    counts = unit_counts(s, study_id)
    plan = assignment.plan_trials(
        assignment.unit_pool(grids, catch, config.protocols),
        counts,
        protocols=config.protocols,
        trials_per_participant=config.trials_per_participant,
        attention_check_rate=config.attention_check_rate,
        rng=rng,
    )
    s.add_all(
        Trial(
            participant_id=participant_id,
            position=pos,
            protocol=u.protocol,
            reference_id=u.reference,
            grid_ids=list(u.grid_ids),
            unit=u.key,
            is_catch=u.is_catch,
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
