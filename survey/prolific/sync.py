"""Reconciling a study with its Prolific submissions (``lookalike prolific sync``).

Every submission is read first (all pages; :mod:`survey.prolific.client`); only then, in one
transaction under the study-row lock (as admissions and time-outs take it), is anything changed:

* a submission ``RETURNED`` or ``REJECTED`` there makes an active participant here ``returned``,
  ``TIMED-OUT`` makes them ``timed_out``, ``SCREENED OUT`` ``screened_out``: their place and their
  unanswered units are freed at once, exactly as our own "stop and leave" frees them
  (:func:`survey.participants.lifecycle.leave`), stamped with the time Prolific gives
  (``completed_at``; the sync's time when Prolific gives none);
* whatever does not match is listed (:class:`~survey.prolific.records.Mismatch`).

Only active participants change, so a second sync changes nothing. When the API cannot be read
(token refused, network down, server errors), the study is not touched; the failed sync is
recorded with its reason and the error raised. Participants are matched by their PROLIFIC_PID
(``Participant.external_id`` of source ``prolific``); a pid with several submissions (a participant
who returned and came back) is judged by the one started last.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Participant, Study, utcnow
from survey.participants import lifecycle, service
from survey.prolific import records
from survey.prolific.client import ProlificClient, ProlificError, Submission
from survey.prolific.records import Mismatch, Release, SyncRecord
from survey.study.config import StudyConfig

#: Prolific's statuses that end a participation here, and the status they give an active participant.
LEAVES: dict[str, lifecycle.Leaving] = {
    "RETURNED": "returned",
    "REJECTED": "returned",
    "TIMED-OUT": "timed_out",
    "SCREENED OUT": "screened_out",
}
LEAVING: dict[str, lifecycle.Leaving] = {s: s for s in ("returned", "timed_out", "screened_out")}
#: Statuses of a submission the participant submitted with a code.
SUBMITTED = ("AWAITING REVIEW", "APPROVED", "PARTIALLY APPROVED")


@dataclass(frozen=True)
class Ours:
    """What reconciling needs of one of our Prolific participants."""

    pid: str
    status: str
    code: str | None  # the completion code of their outcome; None while active or after leaving


def prolific_study_id(make_session: sessionmaker[Session], study_id: int, given: str | None = None) -> str:
    """``given`` (a ``--prolific-study`` flag), else the study's ``[prolific] study_id``."""
    sid = given or service.study_config(make_session, study_id).prolific_study_id
    if not sid:
        raise ProlificError(
            'this study has no Prolific study id: add [prolific] study_id = "..." to the study file and '
            "rebuild, or give --prolific-study ID"
        )
    return sid


def reconcile(submissions: list[Submission], ours: list[Ours], now: datetime) -> tuple[list[Release], list[Mismatch]]:
    """Who leaves here, and what does not match (pure: nothing is read or written)."""
    latest: dict[str, Submission] = {}
    for sub in sorted(submissions, key=lambda x: (x.started_at is not None, x.started_at or now)):
        latest[sub.participant_id] = sub
    by_pid = {o.pid: o for o in ours}
    releases: list[Release] = []
    mismatches = [
        Mismatch("no_participant", pid, f"{sub.status} on Prolific (submission {sub.id}); no participant here")
        for pid, sub in sorted(latest.items())
        if pid not in by_pid and sub.status != "RESERVED"
    ]
    for o in sorted(ours, key=lambda x: x.pid):
        mine = latest.get(o.pid)
        outcome = _compare(o, mine, now)
        if isinstance(outcome, Release):
            releases.append(outcome)
        elif outcome is not None:
            mismatches.append(outcome)
    return releases, mismatches


def _compare(o: Ours, sub: Submission | None, now: datetime) -> Release | Mismatch | None:
    """One of our participants against their submission: a release, a mismatch, or agreement."""
    if sub is None:
        return Mismatch("no_submission", o.pid, f"{o.status} here; no submission on Prolific")
    if sub.status in LEAVES and o.status == "active":
        return Release(o.pid, LEAVES[sub.status], sub.completed_at or now)
    if sub.status in LEAVES and o.status == "completed":
        return Mismatch("status", o.pid, f"{sub.status} on Prolific but completed here")
    entered = sub.study_code or "no code"
    if sub.status in SUBMITTED and o.code is None:
        return Mismatch("status", o.pid, f"{sub.status} on Prolific ({entered}) but {o.status.replace('_', ' ')} here")
    if sub.status in SUBMITTED and (sub.study_code or "") != o.code:
        return Mismatch("code", o.pid, f"entered {entered}; the outcome here ({o.status}) is {o.code}")
    return None


def run_sync(
    make_session: sessionmaker[Session],
    study_id: int,
    client: ProlificClient,
    *,
    prolific_study: str | None = None,
    by: str | None = None,
    now: datetime | None = None,
) -> SyncRecord:
    """Read every submission, then reconcile and record in one transaction; see the module docstring."""
    sid = prolific_study_id(make_session, study_id, prolific_study)
    started = now or utcnow()
    try:
        subs = client.submissions(sid)
    except ProlificError as exc:
        failed = SyncRecord(sid, started, utcnow(), records.who(by), False, str(exc), 0, {}, (), ())
        with make_session.begin() as s:
            records.add_sync(s, study_id, failed)
        raise
    with make_session.begin() as s:
        # the study-row lock admissions and time-outs take: places and unit counts change together
        s.execute(update(Study).where(Study.id == study_id).values(status=Study.status))
        people = _ours(s, study_id)
        releases, mismatches = reconcile(subs, list(people.values()), started)
        done = [r for r in releases if lifecycle.leave(s, people[r.pid].row, LEAVING[r.status], r.at)]
        rec = SyncRecord(
            sid,
            started,
            utcnow(),
            records.who(by),
            True,
            None,
            len(subs),
            dict(Counter(x.status for x in subs)),
            tuple(done),
            tuple(mismatches),
        )
        records.add_sync(s, study_id, rec)
    return rec


@dataclass(frozen=True)
class _Person(Ours):
    row: Participant


def _ours(s: Session, study_id: int) -> dict[str, _Person]:
    """The study's Prolific participants by PROLIFIC_PID, with their outcome's code."""
    study = s.get(Study, study_id)
    assert study is not None
    config = StudyConfig.from_dict(study.config)
    rows = s.scalars(
        select(Participant).where(
            Participant.study_id == study_id, Participant.source == "prolific", Participant.external_id.is_not(None)
        )
    ).all()
    out = {}
    for p in rows:
        finished = p.status in ("completed", "screened_out")
        code = service.outcome(study, config, p)["completion_code"] if finished else None
        out[str(p.external_id)] = _Person(str(p.external_id), p.status, code, p)
    return out


def format_sync(rec: SyncRecord) -> str:
    """What ``lookalike prolific sync`` prints."""
    if not rec.ok:
        return f"sync of Prolific study {rec.prolific_study_id} failed, nothing changed: {rec.error}"
    counts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(rec.counts.items())) or "none"
    lines = [
        f"Prolific study {rec.prolific_study_id}: {rec.submissions} submissions ({counts}); "
        f"{len(rec.released)} participant(s) released here, {len(rec.mismatches)} mismatch(es)"
    ]
    lines += [f"  released {r.pid}: {r.status} (on Prolific at {r.at:%Y-%m-%d %H:%M:%S} UTC)" for r in rec.released]
    lines += [f"  mismatch {m.kind} {m.pid}: {m.detail}" for m in rec.mismatches]
    return "\n".join(lines)
