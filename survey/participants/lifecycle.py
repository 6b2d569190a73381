"""A participant's lifecycle: who holds a place, who left, and the time limit.

Statuses (``Participant.status``), each entered once, each with its own time:

* ``active``: consented (``consented_at``), answering; holds a place and its units;
* ``completed``: answered every trial and the optional questions (``completed_at``); holds a place;
* ``returned``: pressed "stop and leave" and confirmed (``returned_at``);
* ``timed_out``: no answer for the study's ``time_limit_minutes`` (``timed_out_at``: the moment
  the limit passed, i.e. the last activity plus the limit, not the moment it was noticed);
* ``screened_out``: failed the comprehension phase (``screened_out_at``).

Only ``active`` participants change status. The three ways of leaving free the place
(``max_participants`` counts active and completed participants, as Prolific counts places) and
give the unanswered units back to the pool (:func:`survey.participants.planning.release_units`); answers
already given stay in the data.

Time-outs are applied lazily, never by a background thread: whenever the study is about to admit
someone (:func:`survey.participants.service.start_participant`, under the study-row lock, before places and
counts are read), when an idle participant comes back or submits, and when the status is asked
for (``lookalike study status``, the admin page). Every such function takes ``now``, the clock,
so tests and the simulator run on their own clock. A participant who answered every trial is not
timed out (their data are complete; only the optional questions are left).

A timed-out participant who comes back, with the same link or the same platform id, sees that
their time ran out and their place went to someone else, and gets no code and no further trials:
their unanswered units may already be with a newcomer, and Prolific too treats a timed-out
submission as not completed (it reopens the place). They are never given a second, fresh
participation: one platform id is one participant (the database enforces it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Participant
from survey.participants import planning

STATUSES = ("active", "completed", "returned", "timed_out", "screened_out")
HOLDS_PLACE = ("active", "completed")
Leaving = Literal["returned", "timed_out", "screened_out"]


def as_utc(when: datetime) -> datetime:
    """An aware UTC datetime (SQLite returns naive ones, meant as UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def deadline(p: Participant, time_limit_minutes: int) -> datetime | None:
    """When ``p`` times out unless they answer before; ``None`` if the limit does not apply (not
    active, or every trial answered)."""
    if p.status != "active" or p.trials_done_at is not None:
        return None
    since = p.last_active_at or p.consented_at or p.created_at
    return as_utc(since) + timedelta(minutes=time_limit_minutes)


def is_idle(p: Participant, time_limit_minutes: int, now: datetime) -> bool:
    """Active, trials left, and no answer for ``time_limit_minutes`` at ``now``."""
    due = deadline(p, time_limit_minutes)
    return due is not None and due <= as_utc(now)


def leave(s: Session, p: Participant, status: Leaving, when: datetime) -> bool:
    """Move an active participant to ``status`` at ``when`` and release their unanswered units;
    ``False`` (nothing changed) if they are no longer active."""
    if status not in ("returned", "timed_out", "screened_out"):
        raise ValueError(f"status must be returned, timed_out or screened_out, got {status!r}")
    # A conditional UPDATE, not a read then a write: a sweep (under the study lock) and the
    # participant's own request (without it) may time out the same person at once, and the units
    # must be released exactly once. The second UPDATE waits for the first (PostgreSQL's row lock,
    # SQLite's write lock), then finds the status changed and matches nothing.
    moved = s.execute(
        update(Participant)
        .where(Participant.id == p.id, Participant.status == "active")
        .values({"status": status, f"{status}_at": when})
        .returning(Participant.id)
        .execution_options(synchronize_session=False)
    ).first()
    s.refresh(p)
    if moved is None:
        return False
    planning.release_units(s, p.study_id, p.id)
    return True


def time_out(s: Session, p: Participant, time_limit_minutes: int) -> bool:
    """Time out an idle participant, stamped with the moment their limit passed (``False``: someone
    else did first)."""
    due = deadline(p, time_limit_minutes)
    if due is None:
        raise ValueError(f"participant {p.id} is {p.status} with every trial answered; the time limit does not apply")
    return leave(s, p, "timed_out", due)


def expire_idle(s: Session, study_id: int, time_limit_minutes: int, now: datetime) -> int:
    """Time out every idle participant of the study; returns how many. Call it in a write transaction."""
    # filtered here, not in SQL: SQLite stores these times as naive text, PostgreSQL as aware values
    candidates = s.scalars(
        select(Participant).where(
            Participant.study_id == study_id,
            Participant.status == "active",
            Participant.trials_done_at.is_(None),
        )
    ).all()
    return sum(time_out(s, p, time_limit_minutes) for p in candidates if is_idle(p, time_limit_minutes, now))
