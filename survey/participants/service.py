"""Participant service: the only code the survey pages call to read or write study data.

Every function runs in its own short transaction. Nothing returned here names a method,
a segmenter or a grid id: participants see images and positions ("A", "Set 2") only; the
positions are mapped back to grids on the server.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import CatalogItem, Grid, Participant, Response, Study, Trial, utcnow
from survey import protocols
from survey.participants import comprehension, lifecycle, planning, swipes
from survey.participants.answers import MAX_ROW_ID as MAX_ROW_ID
from survey.participants.answers import mark_shown as mark_shown
from survey.participants.answers import submit_answer as submit_answer
from survey.participants.answers import submit_pairwise as submit_pairwise
from survey.participants.answers import submit_ranking as submit_ranking
from survey.participants.answers import submit_rating as submit_rating
from survey.participants.records import StudyUnavailable as StudyUnavailable
from survey.participants.records import participant as _participant
from survey.participants.records import study_of as _study_of
from survey.participants.sanitize import MAX_COMMENT_LEN, plain_text, recruitment_params
from survey.participants.swipes import SwipeView
from survey.participants.swipes import submit_pick as submit_pick
from survey.participants.swipes import submit_set_rating as submit_set_rating
from survey.participants.swipes import submit_swipe as submit_swipe
from survey.protocols import get_protocol
from survey.study.config import StudyConfig

#: URL parameters that identify a recruited participant, by platform.
EXTERNAL_ID_PARAMS = {"prolific": "PROLIFIC_PID", "mturk": "workerId"}


@dataclass(frozen=True)
class StudyInfo:
    id: int
    name: str
    status: str


@dataclass(frozen=True)
class TrialView:
    trial_id: int
    number: int  # 1-based position shown to the participant
    protocol: str  # a name in survey.protocols.NAMES
    reference_path: str
    grids: tuple[tuple[str, ...], ...]  # image paths per grid, in display order
    ticks: bool = False  # rating: ask per-item similar / not similar
    swipe: SwipeView | None = None  # swipe: the round's screen now (reference_path "" and no grids)


Stage = Literal["instructions", "comprehension", "trial", "questions", "done", "returned", "timed_out", "screened_out"]


@dataclass(frozen=True)
class ParticipantState:
    """Where a participant is. ``completion_code`` and ``redirect_url``: those of the outcome
    (done: completed, or failed attention checks; screened_out), only once the last answer is stored."""

    stage: Stage
    answered: int
    total: int
    protocols: tuple[str, ...] = ("rating",)
    trial: TrialView | None = None
    practice: tuple[comprehension.PracticeScreen, ...] = ()  # comprehension: this attempt's screens
    attempt: int = 0  # comprehension: 1 or 2
    completion_code: str | None = None
    redirect_url: str | None = None


def current_study(make_session: sessionmaker[Session], name: str | None = None) -> StudyInfo:
    """The study to serve: the one named, else the most recently built."""
    with make_session() as s:
        q = select(Study).order_by(Study.id.desc())
        if name:
            q = select(Study).where(Study.name == name)
        study = s.scalars(q).first()
        if study is None:
            raise StudyUnavailable(
                f"no study named '{name}'"
                if name
                else "no study has been built yet; run `lookalike build` or `lookalike demo`"
            )
        return StudyInfo(study.id, study.name, study.status)


def study_config(make_session: sessionmaker[Session], study_id: int) -> StudyConfig:
    with make_session() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise StudyUnavailable(f"no study with id {study_id}")
        return StudyConfig.from_dict(study.config)


def participant_config(make_session: sessionmaker[Session], token: str) -> StudyConfig:
    """The configuration of the study this participant belongs to (texts, questions)."""
    with make_session() as s:
        p = _participant(s, token)
        if p is None:
            raise PermissionError("unknown participant token")
        return StudyConfig.from_dict(_study_of(s, p).config)


def expire_idle(make_session: sessionmaker[Session], study_id: int, *, now: datetime | None = None) -> int:
    """Time out the study's idle participants at ``now`` (default: the time now); returns how many.
    Also done whenever someone is admitted; call it before reading places or progress."""
    with make_session.begin() as s:
        s.execute(update(Study).where(Study.id == study_id).values(status=Study.status))  # as start_participant
        study = s.get(Study, study_id)
        if study is None:
            raise StudyUnavailable(f"no study with id {study_id}")
        limit = StudyConfig.from_dict(study.config).time_limit_minutes
        return lifecycle.expire_idle(s, study_id, limit, now or utcnow())


def set_study_status(make_session: sessionmaker[Session], study_id: int, status: Literal["open", "closed"]) -> None:
    """Open or close a study. A closed study refuses new participants; those who started finish."""
    if status not in ("open", "closed"):
        raise ValueError(f"status must be 'open' or 'closed', got {status!r}")
    with make_session.begin() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise StudyUnavailable(f"no study with id {study_id}")
        study.status = status


def start_participant(
    make_session: sessionmaker[Session],
    study_id: int,
    url_params: dict[str, Any],
    rng: np.random.Generator | None = None,
    *,
    now: datetime | None = None,
    browser_test: bool = False,
) -> str:
    """Create a consented participant with balanced, randomly ordered trials; return its token.

    A participant arriving again with the same platform id (e.g. ``PROLIFIC_PID``)
    resumes: the existing token is returned and nothing new is created (whatever their status:
    one who returned or timed out sees so, :mod:`survey.participants.lifecycle`). ``now``: the clock (default:
    the time now); idle participants are timed out first, so that their places and units are free.
    ``browser_test``: the project's own browser test (never flagged, :mod:`survey.participants.bot_signals`).
    """
    rng = rng or np.random.default_rng()
    now = now or utcnow()
    params = recruitment_params(url_params)
    source, external_id = _recruited_by(params)
    with make_session.begin() as s:
        # Lock the study row first (a row lock in PostgreSQL, the write lock in SQLite), so that
        # concurrent starts, in one process or several, run one after another: each sees every
        # earlier participant (max_participants, a returning platform id, least-judged counts).
        s.execute(update(Study).where(Study.id == study_id).values(status=Study.status))
        study = s.get(Study, study_id)
        if study is None or study.status != "open":
            raise StudyUnavailable("this study is not accepting participants")
        if external_id is not None:
            known = s.scalar(
                select(Participant).where(Participant.study_id == study_id, Participant.external_id == external_id)
            )
            if known is not None:
                return known.token
        config = StudyConfig.from_dict(study.config)
        lifecycle.expire_idle(s, study_id, config.time_limit_minutes, now)
        _check_places(s, study_id, config)
        p = Participant(
            study_id=study_id,
            token=secrets.token_urlsafe(24),
            external_id=external_id,
            source=source,
            url_params=params,
            created_at=now,
            consented_at=now,
            last_active_at=now,
            flags=[],
            browser_test=browser_test,
            demographics={},
        )
        s.add(p)
        s.flush()
        # Planned inside the lock, from counts that include every earlier participant, and
        # counted in this transaction (survey.participants.planning.store_trials says which race this prevents).
        try:
            planning.store_trials(s, study_id, p.id, config, rng)
        except planning.StudyFull:
            raise StudyUnavailable("this study is full: every unit has the judgements it needs") from None
        return p.token


def _recruited_by(params: dict[str, Any]) -> tuple[str, str | None]:
    """(platform, the participant's id there) from the URL parameters; ("direct", None) without one."""
    for platform, key in EXTERNAL_ID_PARAMS.items():
        if params.get(key):
            return platform, params[key]
    return "direct", None


def _check_places(s: Session, study_id: int, config: StudyConfig) -> None:
    """Refuse a newcomer when ``max_participants`` places are taken (active and completed
    participants hold one, as Prolific counts them)."""
    if not config.max_participants:
        return
    taken = s.execute(
        select(func.count(Participant.id)).where(
            Participant.study_id == study_id, Participant.status.in_(lifecycle.HOLDS_PLACE)
        )
    ).scalar_one()
    if taken >= config.max_participants:
        raise StudyUnavailable("this study is full")


# --- reading state ---------------------------------------------------------------------------


def outcome(study: Study, config: StudyConfig, p: Participant) -> dict[str, Any]:
    """The code and redirect of a finished participant's outcome."""
    if p.status == "screened_out":
        return {"completion_code": config.screened_out_code, "redirect_url": config.screened_out_url}
    failed = sum(1 for f in p.flags or [] if f.startswith("failed_check:"))
    if config.failed_check_code and failed >= config.failed_checks_limit:
        return {"completion_code": config.failed_check_code, "redirect_url": config.failed_check_url}
    return {"completion_code": study.completion_code, "redirect_url": config.redirect_url}


def participant_state(
    make_session: sessionmaker[Session], token: str, *, now: datetime | None = None
) -> ParticipantState | None:
    """Where a participant is; ``None`` for an unknown token. An active participant idle past the
    time limit at ``now`` (default: the time now) is timed out here and sees so."""
    with make_session.begin() as s:
        p = _participant(s, token)
        if p is None:
            return None
        study = _study_of(s, p)
        config = StudyConfig.from_dict(study.config)
        if lifecycle.is_idle(p, config.time_limit_minutes, now or utcnow()):
            lifecycle.time_out(s, p, config.time_limit_minutes)
        trials = s.scalars(select(Trial).where(Trial.participant_id == p.id).order_by(Trial.position)).all()
        answered_ids = set(s.scalars(select(Response.trial_id).where(Response.participant_id == p.id)))
        total, answered = len(trials), len(answered_ids)
        state = partial(ParticipantState, answered=answered, total=total, protocols=config.protocols)
        if p.status == "screened_out":
            return state("screened_out", **outcome(study, config, p))
        if p.status == "returned":
            return state("returned")
        if p.status == "timed_out":
            return state("timed_out")
        if p.instructions_done_at is None:
            return state("instructions")
        if config.comprehension and p.comprehension_passed_at is None:
            return state(
                "comprehension",
                practice=comprehension.practice(s, p, config),
                attempt=p.comprehension_attempts + 1,
            )
        pending = [t for t in trials if t.id not in answered_ids]
        if not pending:
            if p.completed_at is None and (config.demographics or config.ask_comment):
                return state("questions")
            return state("done", **outcome(study, config, p))
        t = pending[0]
        if t.protocol not in protocols.NAMES:
            raise ValueError(
                f"trial {t.id} has protocol {t.protocol!r}, not one of {', '.join(protocols.NAMES)}; "
                "the database was not written by this Lookalike"
            )
        if get_protocol(t.protocol).rounds:  # a swipe round of several screens (survey.participants.swipes)
            screen = swipes.current(s, study, t, config, now or utcnow())
            return state("trial", trial=TrialView(t.id, answered + 1, t.protocol, "", (), swipe=screen))
        assert t.reference_id is not None  # planned with its reference (only swipe rounds choose theirs)
        grids = {g.id: g for g in s.scalars(select(Grid).where(Grid.id.in_(t.grid_ids)))}
        ids = {t.reference_id, *(i for g in grids.values() for i in g.item_ids)}
        paths = dict(s.execute(select(CatalogItem.id, CatalogItem.path).where(CatalogItem.id.in_(ids))).all())
        view = TrialView(
            t.id,
            answered + 1,
            t.protocol,
            paths[t.reference_id],
            tuple(tuple(paths[i] for i in grids[g].item_ids) for g in t.grid_ids),
            ticks=config.rating_item_ticks and t.protocol == "rating",
        )
        return state("trial", trial=view)


# --- writing -----------------------------------------------------------------------------------


def finish_instructions(make_session: sessionmaker[Session], token: str, *, now: datetime | None = None) -> None:
    with make_session.begin() as s:
        p = _participant(s, token)
        if p is None:
            raise PermissionError("unknown participant token")
        if p.instructions_done_at is None and p.status == "active":
            p.instructions_done_at = p.last_active_at = now or utcnow()


def return_participant(make_session: sessionmaker[Session], token: str, *, now: datetime | None = None) -> None:
    """ "Stop and leave", confirmed: the participant is ``returned``, their place and unanswered units
    freed. Idempotent for one who returned already; refused once the participation is over."""
    with make_session.begin() as s:
        p = _participant(s, token)
        if p is None:
            raise PermissionError("unknown participant token")
        if p.status == "returned":
            return
        if p.status != "active":
            raise PermissionError(f"this participation is over ({p.status}); there is nothing to leave")
        lifecycle.leave(s, p, "returned", now or utcnow())


def submit_questions(
    make_session: sessionmaker[Session],
    token: str,
    answers: dict[str, str | None],
    comment: str | None,
    *,
    now: datetime | None = None,
) -> None:
    """Store the optional closing questions and complete the participation (idempotent)."""
    with make_session.begin() as s:
        p = _participant(s, token)
        if p is None:
            raise PermissionError("unknown participant token")
        if p.completed_at is not None:
            return
        config = StudyConfig.from_dict(_study_of(s, p).config)
        if p.trials_done_at is None:
            raise PermissionError("the closing questions come after the last trial")
        valid = {q.key: set(q.options) for q in config.demographics}
        clean = {}
        for key, value in answers.items():
            if key not in valid:
                raise ValueError(f"unknown question '{key}'")
            if value is not None:
                if value not in valid[key]:
                    raise ValueError(f"'{value}' is not an option of question '{key}'")
                clean[key] = value
        p.demographics = clean
        p.comment = plain_text(comment or "", MAX_COMMENT_LEN, keep="\n\t").strip() or None
        p.completed_at = now or utcnow()
        p.status = "completed"
