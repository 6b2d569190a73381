"""What the database keeps of Prolific: each sync (:class:`db.models.ProlificSync`) and each action
taken there (:class:`db.models.ProlificAction`), and the reads the admin page and the CLI make.

Who acted is the operating-system user running the command unless ``--by`` names someone."""

from __future__ import annotations

import getpass
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import ProlificAction, ProlificSync
from survey.participants.lifecycle import as_utc


def who(by: str | None) -> str:
    """``by`` if given, else the operating-system user."""
    return by or getpass.getuser()


@dataclass(frozen=True)
class Mismatch:
    """Something Prolific and our data disagree on. ``kind``: ``no_participant`` (a submission with
    no participant here), ``no_submission`` (a participant with no submission there), ``code`` (the
    completion code entered differs from the outcome's), ``status`` (finished or left on one side
    only)."""

    kind: str
    pid: str
    detail: str


@dataclass(frozen=True)
class Release:
    """A participant a sync moved out of ``active`` (their place and units freed), and when it
    happened on Prolific."""

    pid: str
    status: str
    at: datetime


@dataclass(frozen=True)
class SyncRecord:
    """One sync as recorded."""

    prolific_study_id: str
    started_at: datetime
    finished_at: datetime
    by: str
    ok: bool
    error: str | None
    submissions: int
    counts: dict[str, int]
    released: tuple[Release, ...]
    mismatches: tuple[Mismatch, ...]


def add_sync(s: Session, study_id: int, rec: SyncRecord) -> None:
    """Record a sync: the fields of ``rec`` are the table's columns (releases and mismatches as JSON)."""
    row = asdict(rec)
    row["counts"] = dict(rec.counts)
    row["released"] = [{**r, "at": r["at"].isoformat()} for r in row["released"]]
    row["mismatches"] = list(row["mismatches"])
    s.add(ProlificSync(study_id=study_id, **row))


def last_sync(make_session: sessionmaker[Session], study_id: int) -> SyncRecord | None:
    """The study's most recent sync, failed or not; ``None`` if it was never synced."""
    with make_session() as s:
        row = s.scalars(
            select(ProlificSync).where(ProlificSync.study_id == study_id).order_by(ProlificSync.id.desc()).limit(1)
        ).first()
        return None if row is None else _record(row)


def _record(row: ProlificSync) -> SyncRecord:
    return SyncRecord(
        prolific_study_id=row.prolific_study_id,
        started_at=as_utc(row.started_at),
        finished_at=as_utc(row.finished_at),
        by=row.by,
        ok=row.ok,
        error=row.error,
        submissions=row.submissions,
        counts={str(k): int(v) for k, v in row.counts.items()},
        released=tuple(Release(r["pid"], r["status"], datetime.fromisoformat(r["at"])) for r in row.released),
        mismatches=tuple(Mismatch(m["kind"], m["pid"], m["detail"]) for m in row.mismatches),
    )


def add_action(
    s: Session,
    study_id: int,
    *,
    at: datetime,
    by: str,
    submission_id: str,
    pid: str | None,
    request: dict[str, Any],
    status_code: int | None,
    answer: str,
) -> None:
    """Record one call that changes something on Prolific (``request`` is the body sent: never the token)."""
    s.add(
        ProlificAction(
            study_id=study_id,
            at=at,
            by=by,
            action=str(request.get("action", "")),
            submission_id=submission_id,
            participant_pid=pid,
            request=request,
            status_code=status_code,
            answer=answer[:4000],
            ok=status_code is not None and 200 <= status_code < 300,
        )
    )


def actions(make_session: sessionmaker[Session], study_id: int) -> list[dict[str, Any]]:
    """Every recorded action of the study, oldest first, as table rows."""
    with make_session() as s:
        rows = s.scalars(select(ProlificAction).where(ProlificAction.study_id == study_id).order_by(ProlificAction.id))
        return [
            {
                "at": as_utc(a.at),
                "by": a.by,
                "action": a.action,
                "participant": a.participant_pid,
                "submission": a.submission_id,
                "answer": f"{a.status_code if a.status_code is not None else 'no answer'} {a.answer[:120]}",
            }
            for a in rows
        ]
