"""Reviewing Prolific submissions from our data (``lookalike prolific review``).

Each submission awaiting review gets a recommendation and the reason from our data:

* ``approve``: completed here, the completion code entered is the outcome's, no more failed
  attention checks than the study allows, no more too-fast answers than ``too_fast_max``, no
  other flag;
* ``review``: anything else, with the reason (failed attention checks, too fast, screened out, not
  finished here, wrong or missing code, no participant here, another flag such as automated
  answering once that is detected) and the rejection category that reason would fall under.

Approvals are sent only for ``approve`` recommendations and only when asked (``--approve``);
rejections are never automatic: one participant at a time, with a category the API accepts and a
message of at least 100 characters. Every call is recorded (:func:`survey.prolific.records.add_action`)
with who, when, what was sent and what the API answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Participant, Study, utcnow
from survey.participants import service
from survey.prolific import records
from survey.prolific.client import (
    MIN_REJECTION_MESSAGE,
    REJECTION_CATEGORIES,
    Answer,
    ProlificClient,
    ProlificError,
    Submission,
)
from survey.study.config import StudyConfig


@dataclass(frozen=True)
class Evidence:
    """What our data say of one participant."""

    status: str
    code: str | None  # the completion code of their outcome; None unless completed or screened out
    failed_checks: int
    failed_checks_limit: int
    too_fast: int
    other_flags: tuple[str, ...]


@dataclass(frozen=True)
class Recommendation:
    submission_id: str
    pid: str
    entered_code: str | None
    recommend: str  # "approve" | "review"
    reason: str
    category: str | None  # the rejection category the reason would fall under (never sent by itself)


def recommend(sub: Submission, ev: Evidence | None, *, too_fast_max: int = 0) -> Recommendation:
    """The recommendation for one submission awaiting review (pure)."""

    def rec(what: str, reason: str, category: str | None = None) -> Recommendation:
        return Recommendation(sub.id, sub.participant_id, sub.study_code, what, reason, category)

    if ev is None:
        return rec("review", "no participant with this PROLIFIC_PID here: no data", "NO_DATA")
    if ev.status == "screened_out":
        return rec("review", "screened out here (failed the comprehension phase)", "FAILED_INSTRUCTIONS")
    if ev.status != "completed":
        return rec("review", f"did not finish here ({ev.status.replace('_', ' ')})", "NO_CODE")
    if ev.failed_checks >= ev.failed_checks_limit:
        return rec("review", f"failed attention checks ({ev.failed_checks})", "FAILED_CHECK")
    if ev.too_fast > too_fast_max:
        return rec("review", f"too fast ({ev.too_fast} answers under min_response_ms)", "TOO_QUICKLY")
    if ev.other_flags:
        return rec("review", f"flagged: {', '.join(ev.other_flags)}", "OTHER")
    if (sub.study_code or "") != ev.code:
        return rec("review", f"entered code {sub.study_code or 'none'}, the outcome's is {ev.code}", "BAD_CODE")
    return rec("approve", "completed")


def evidence(make_session: sessionmaker[Session], study_id: int) -> dict[str, Evidence]:
    """Our data on every Prolific participant of the study, by PROLIFIC_PID."""
    with make_session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        config = StudyConfig.from_dict(study.config)
        rows = s.scalars(
            select(Participant).where(Participant.study_id == study_id, Participant.source == "prolific")
        ).all()
        out = {}
        for p in rows:
            flags = list(p.flags or [])
            finished = p.status in ("completed", "screened_out")
            out[str(p.external_id)] = Evidence(
                status=p.status,
                code=service.outcome(study, config, p)["completion_code"] if finished else None,
                failed_checks=sum(f.startswith("failed_check:") for f in flags),
                failed_checks_limit=config.failed_checks_limit,
                too_fast=sum(f.startswith("too_fast:") for f in flags),
                other_flags=tuple(f for f in flags if not f.startswith(("failed_check:", "too_fast:"))),
            )
        return out


def awaiting_review(
    make_session: sessionmaker[Session], study_id: int, subs: list[Submission], *, too_fast_max: int = 0
) -> list[Recommendation]:
    """A recommendation for every submission awaiting review, by PROLIFIC_PID."""
    ev = evidence(make_session, study_id)
    waiting = sorted((x for x in subs if x.status == "AWAITING REVIEW"), key=lambda x: x.participant_id)
    return [recommend(x, ev.get(x.participant_id), too_fast_max=too_fast_max) for x in waiting]


def send(
    make_session: sessionmaker[Session],
    study_id: int,
    client: ProlificClient,
    rec: Recommendation,
    body: dict[str, str],
    *,
    by: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """Send one transition and record it, whatever the answer; a refused token or no answer at all
    is recorded too (then re-raised)."""
    at = now or utcnow()
    try:
        answer = client.transition(rec.submission_id, body)
    except ProlificError as exc:
        with make_session.begin() as s:
            records.add_action(
                s, study_id, at=at, by=records.who(by), submission_id=rec.submission_id, pid=rec.pid,
                request=body, status_code=None, answer=str(exc),
            )  # fmt: skip
        raise
    with make_session.begin() as s:
        records.add_action(
            s, study_id, at=at, by=records.who(by), submission_id=rec.submission_id, pid=rec.pid,
            request=body, status_code=answer.status_code, answer=answer.text,
        )  # fmt: skip
    return answer


def rejection(category: str, message: str) -> dict[str, str]:
    """The body of a rejection, checked as the API checks it."""
    if category not in REJECTION_CATEGORIES:
        raise ProlificError(f"--category {category!r} is not one Prolific accepts: {', '.join(REJECTION_CATEGORIES)}")
    if len(message.strip()) < MIN_REJECTION_MESSAGE:
        raise ProlificError(
            f"--reason is {len(message.strip())} characters; Prolific requires at least {MIN_REJECTION_MESSAGE}: "
            "explain to the participant what was wrong"
        )
    return {"action": "REJECT", "message": message.strip(), "rejection_category": category}


def format_review(recs: list[Recommendation]) -> str:
    """The review table ``lookalike prolific review`` prints."""
    if not recs:
        return "no submission awaiting review"
    width = max(len("PROLIFIC_PID"), *(len(r.pid) for r in recs))
    head = f"{'PROLIFIC_PID':<{width}}  {'code':<10}  {'recommend':<9}  {'if rejected':<19}  reason"
    rows = [
        f"{r.pid:<{width}}  {(r.entered_code or '-'):<10}  {r.recommend:<9}  {(r.category or '-'):<19}  {r.reason}"
        for r in recs
    ]
    n = sum(r.recommend == "approve" for r in recs)
    return "\n".join(
        [head, *rows, f"{len(recs)} awaiting review: {n} recommended for approval, {len(recs) - n} to review"]
    )
