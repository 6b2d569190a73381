"""Storing answers: the trial shown, then one answer per trial, attention checks and response
times evaluated on the way. Called through :mod:`survey.participants.service`, which re-exports these functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from db.models import Base, Grid, Participant, Response, Trial, utcnow
from survey.participants import bot_signals, lifecycle, planning, protocol_parts
from survey.participants.records import study_of
from survey.study.config import StudyConfig

MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys; larger ids cannot exist (and PostgreSQL rejects them)


def mark_shown(make_session: sessionmaker[Session], token: str, trial_id: int, *, now: datetime | None = None) -> None:
    """Record when a trial was first shown (the start of its response time)."""
    with make_session.begin() as s:
        t, _ = owned_trial(s, token, trial_id)
        if t.shown_at is None:
            t.shown_at = now or utcnow()


def owned_trial(s: Session, token: str, trial_id: int) -> tuple[Trial, Participant]:
    """The trial and its participant, in one query; PermissionError unless the token owns the trial."""
    valid = (
        isinstance(token, str)
        and 0 < len(token) <= 64
        and isinstance(trial_id, int)
        and not isinstance(trial_id, bool)
        and 0 < trial_id <= MAX_ROW_ID
    )
    row = (
        s.execute(
            select(Trial, Participant)
            .join(Participant, Trial.participant_id == Participant.id)
            .where(Participant.token == token, Trial.id == trial_id)
        ).first()
        if valid
        else None
    )
    if row is None:
        raise PermissionError("this trial does not belong to this participant")
    return row[0], row[1]


def insert_ignore(s: Session, model: type[Base], values: dict[str, Any]) -> bool:
    table = Base.metadata.tables[model.__tablename__]  # the Table (``model.__table__`` is typed as any FromClause)
    dialect = s.get_bind().dialect.name
    ins: sqlite.Insert | postgresql.Insert
    if dialect == "sqlite":
        ins = sqlite.insert(table)
    elif dialect == "postgresql":
        ins = postgresql.insert(table)
    else:
        raise NotImplementedError(f"database dialect '{dialect}' is not supported (use SQLite or PostgreSQL)")
    # RETURNING, not rowcount: drivers differ in what rowcount reports for ON CONFLICT DO NOTHING
    inserted = s.execute(ins.values(**values).on_conflict_do_nothing().returning(*table.primary_key))
    return inserted.first() is not None


def _failed_check(s: Session, t: Trial, answer: dict[str, Any]) -> bool:
    """The rule and its reasons: :mod:`survey.participants.protocol_parts`."""
    catch = s.scalar(select(Grid.id).where(Grid.id.in_(t.grid_ids), Grid.kind == "catch"))
    if catch is None:
        raise RuntimeError(f"attention-check trial {t.id} shows no catch grid; the study's trials are corrupt")
    return protocol_parts.failed_check(t.protocol, t.grid_ids, catch, answer)


def _store(
    make_session: sessionmaker[Session],
    token: str,
    trial_id: int,
    protocol: str,
    submitted: dict[str, Any],
    now: datetime | None,
) -> bool:
    """Insert the answer unless the trial was answered already or the participant is no longer
    active (returned, timed out, screened out; an idle one is timed out here); evaluate attention
    checks and response time (flags are recorded, never shown to the participant). ``submitted``
    is checked and turned into stored columns by the protocol's rules
    (:func:`survey.participants.protocol_parts.answer_columns`)."""
    with make_session.begin() as s:
        t, p = owned_trial(s, token, trial_id)
        if t.protocol != protocol:
            raise ValueError(f"trial {trial_id} is a {t.protocol} trial, not {protocol}")
        answer = protocol_parts.answer_columns(protocol, submitted, t.grid_ids)
        now = now or datetime.now(UTC)
        config = StudyConfig.from_dict(study_of(s, p).config)
        if not still_active(s, p, config, now):
            return False
        return record_answer(s, t, p, answer, now)


def still_active(s: Session, p: Participant, config: StudyConfig, now: datetime) -> bool:
    """Whether ``p`` may still answer at ``now``: active, and not idle past the time limit (an idle
    one is timed out here: the unit may be someone else's now)."""
    if p.status != "active":
        return False
    if lifecycle.is_idle(p, config.time_limit_minutes, now):
        lifecycle.time_out(s, p, config.time_limit_minutes)
        return False
    return True


def record_answer(s: Session, t: Trial, p: Participant, answer: dict[str, Any], now: datetime) -> bool:
    """Insert trial ``t``'s answer (its stored columns) in session ``s`` unless it has one; count it,
    flag a failed attention check or a too fast answer, and complete the trials when it is the
    last. ``False``, changing nothing, when the trial was answered already."""
    study = study_of(s, p)
    config = StudyConfig.from_dict(study.config)
    shown = lifecycle.as_utc(t.shown_at) if t.shown_at is not None else None
    ms = int((now - shown).total_seconds() * 1000) if shown else None
    stored = insert_ignore(
        s,
        Response,
        {"trial_id": t.id, "participant_id": t.participant_id, "response_ms": ms, "created_at": now, **answer},
    )
    if not stored:
        return False
    p.last_active_at = now
    if not (t.is_catch or t.is_repeat):
        reached = planning.count_answer(s, p.study_id, t.unit)
        if reached == config.judgements_per_unit and planning.fully_judged(
            s, p.study_id, config.protocols, config.judgements_per_unit
        ):
            study.status = "closed"  # the target is reached: no newcomer is needed any more
    flags = list(p.flags or [])
    if t.is_catch and _failed_check(s, t, answer):
        flags.append(f"failed_check:{t.position}")
    if config.min_response_ms and ms is not None and ms < config.min_response_ms:
        flags.append(f"too_fast:{t.position}")
    p.flags = flags
    n_trials, n_done = s.execute(
        select(func.count(Trial.id), func.count(Response.id))
        .select_from(Trial)
        .outerjoin(Response, Response.trial_id == Trial.id)
        .where(Trial.participant_id == p.id)
    ).one()
    if n_done >= n_trials and p.trials_done_at is None:
        p.trials_done_at = now
        bot_signals.check_answers(s, p)
        if not (config.demographics or config.ask_comment):
            p.completed_at = now
            p.status = "completed"
    return True


def submit_answer(
    make_session: sessionmaker[Session],
    token: str,
    trial_id: int,
    protocol: str,
    answer: dict[str, Any],
    *,
    now: datetime | None = None,
) -> bool:
    """Store an answer to a ``protocol`` trial (its fields: the protocol's rules); ``False`` if
    the trial was answered already (nothing changes). A ``ValueError`` names an invalid answer."""
    return _store(make_session, token, trial_id, protocol, answer, now)


def submit_rating(
    make_session: sessionmaker[Session],
    token: str,
    trial_id: int,
    rating: int,
    ticks: list[bool] | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """Store one rating (1-7, optional per-item ticks); ``False`` if already answered (nothing changes)."""
    return _store(make_session, token, trial_id, "rating", {"rating": rating, "ticks": ticks}, now)


def submit_pairwise(
    make_session: sessionmaker[Session], token: str, trial_id: int, choice: str, *, now: datetime | None = None
) -> bool:
    """Store a pairwise choice: 'left', 'right' or 'tie' (equally similar)."""
    return _store(make_session, token, trial_id, "pairwise", {"choice": choice}, now)


def submit_ranking(
    make_session: sessionmaker[Session],
    token: str,
    trial_id: int,
    best: int,
    worst: int,
    *,
    now: datetime | None = None,
) -> bool:
    """Store a best-worst choice, given as display positions (0-based); mapped to grids here."""
    return _store(make_session, token, trial_id, "ranking", {"best": best, "worst": worst}, now)
