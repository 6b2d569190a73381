"""Participant service: the only code the survey pages call to read or write study data.

Every function runs in its own short transaction. Nothing returned here names a method,
a segmenter or a grid id: participants see images and positions ("A", "Set 2") only; the
positions are mapped back to grids on the server.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, TypeGuard

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from db.models import Base, CatalogItem, Grid, Participant, Response, Study, Trial, utcnow
from similarity.errors import UserError

from . import checks, planning
from .config import PROTOCOLS, StudyConfig
from .sanitize import MAX_COMMENT_LEN, plain_text, recruitment_params

#: URL parameters that identify a recruited participant, by platform.
EXTERNAL_ID_PARAMS = {"prolific": "PROLIFIC_PID", "mturk": "workerId"}
MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys; larger ids cannot exist (and PostgreSQL rejects them)


class StudyUnavailable(UserError, LookupError):
    pass


ProtocolName = Literal["rating", "pairwise", "ranking"]


def _is_protocol(name: str) -> TypeGuard[ProtocolName]:
    return name in PROTOCOLS


@dataclass(frozen=True)
class StudyInfo:
    id: int
    name: str
    status: str


@dataclass(frozen=True)
class TrialView:
    trial_id: int
    number: int  # 1-based position shown to the participant
    protocol: ProtocolName
    reference_path: str
    grids: tuple[tuple[str, ...], ...]  # image paths per grid, in display order
    ticks: bool = False  # rating: ask per-item similar / not similar


@dataclass(frozen=True)
class ParticipantState:
    stage: Literal["instructions", "trial", "questions", "done"]
    answered: int
    total: int
    protocols: tuple[str, ...] = ("rating",)
    trial: TrialView | None = None
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
) -> str:
    """Create a consented participant with balanced, randomly ordered trials; return its token.

    A participant arriving again with the same platform id (e.g. ``PROLIFIC_PID``)
    resumes: the existing token is returned and nothing new is created.
    """
    rng = rng or np.random.default_rng()
    params = recruitment_params(url_params)
    source, external_id = "direct", None
    for platform, key in EXTERNAL_ID_PARAMS.items():
        if params.get(key):
            source, external_id = platform, params[key]
            break
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
        if config.max_participants:
            n = s.execute(select(func.count(Participant.id)).where(Participant.study_id == study_id)).scalar_one()
            if n >= config.max_participants:
                raise StudyUnavailable("this study is full")
        p = Participant(
            study_id=study_id,
            token=secrets.token_urlsafe(24),
            external_id=external_id,
            source=source,
            url_params=params,
            consented_at=utcnow(),
            flags=[],
            demographics={},
        )
        s.add(p)
        s.flush()
        # Planned inside the lock, from counts that include every earlier participant, and
        # counted in this transaction (survey.planning.store_trials says which race this prevents).
        planning.store_trials(s, study_id, p.id, config, rng)
        return p.token


# --- reading state ---------------------------------------------------------------------------


def _participant(s: Session, token: str) -> Participant | None:
    if not isinstance(token, str) or not token or len(token) > 64:
        return None
    return s.scalar(select(Participant).where(Participant.token == token))


def _study_of(s: Session, p: Participant) -> Study:
    """The participant's study; the foreign key (ON DELETE CASCADE) keeps it from being missing."""
    study = s.get(Study, p.study_id)
    if study is None:
        raise StudyUnavailable(
            f"participant {p.id} belongs to study {p.study_id}, which does not exist; "
            "the database is inconsistent, restore it from a backup"
        )
    return study


def participant_state(make_session: sessionmaker[Session], token: str) -> ParticipantState | None:
    """Where a participant is; ``None`` for an unknown token."""
    with make_session() as s:
        p = _participant(s, token)
        if p is None:
            return None
        study = _study_of(s, p)
        config = StudyConfig.from_dict(study.config)
        trials = s.scalars(select(Trial).where(Trial.participant_id == p.id).order_by(Trial.position)).all()
        answered_ids = set(s.scalars(select(Response.trial_id).where(Response.participant_id == p.id)))
        total, answered = len(trials), len(answered_ids)
        state = partial(ParticipantState, answered=answered, total=total, protocols=config.protocols)
        if p.instructions_done_at is None:
            return state("instructions")
        pending = [t for t in trials if t.id not in answered_ids]
        if not pending:
            if p.completed_at is None and (config.demographics or config.ask_comment):
                return state("questions")
            return state("done", completion_code=study.completion_code, redirect_url=config.redirect_url)
        t = pending[0]
        if not _is_protocol(t.protocol):
            raise ValueError(
                f"trial {t.id} has protocol {t.protocol!r}, not one of {', '.join(PROTOCOLS)}; "
                "the database was not written by this Lookalike"
            )
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


def finish_instructions(make_session: sessionmaker[Session], token: str) -> None:
    with make_session.begin() as s:
        p = _participant(s, token)
        if p is None:
            raise PermissionError("unknown participant token")
        if p.instructions_done_at is None:
            p.instructions_done_at = utcnow()


def mark_shown(make_session: sessionmaker[Session], token: str, trial_id: int) -> None:
    """Record when a trial was first shown (the start of its response time)."""
    with make_session.begin() as s:
        t, _ = _owned_trial(s, token, trial_id)
        if t.shown_at is None:
            t.shown_at = utcnow()


def _owned_trial(s: Session, token: str, trial_id: int) -> tuple[Trial, Participant]:
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


def _insert_ignore(s: Session, model: type[Base], values: dict[str, Any]) -> bool:
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
    """The rule and its reasons: :mod:`survey.checks`."""
    catch = s.scalar(select(Grid.id).where(Grid.id.in_(t.grid_ids), Grid.kind == "catch"))
    if catch is None:
        raise RuntimeError(f"attention-check trial {t.id} shows no catch grid; the study's trials are corrupt")
    return checks.failed_check(t.protocol, t.grid_ids, catch, answer)


def _store(
    make_session: sessionmaker[Session], token: str, trial_id: int, protocol: str, answer: dict[str, Any]
) -> bool:
    """Insert the answer unless the trial was answered already; evaluate attention checks and
    response time (flags are recorded, never shown to the participant)."""
    with make_session.begin() as s:
        t, p = _owned_trial(s, token, trial_id)
        if t.protocol != protocol:
            raise ValueError(f"trial {trial_id} is a {t.protocol} trial, not {protocol}")
        now = datetime.now(UTC)
        shown = t.shown_at
        if shown is not None and shown.tzinfo is None:  # SQLite returns naive datetimes
            shown = shown.replace(tzinfo=UTC)
        ms = int((now - shown).total_seconds() * 1000) if shown else None
        stored = _insert_ignore(
            s,
            Response,
            {"trial_id": t.id, "participant_id": t.participant_id, "response_ms": ms, "created_at": now, **answer},
        )
        if not stored:
            return False
        config = StudyConfig.from_dict(_study_of(s, p).config)
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
            if not (config.demographics or config.ask_comment):
                p.completed_at = now
        return True


def submit_rating(
    make_session: sessionmaker[Session], token: str, trial_id: int, rating: int, ticks: list[bool] | None = None
) -> bool:
    """Store one rating (1-7, optional per-item ticks); ``False`` if already answered (nothing changes)."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 7:
        raise ValueError(f"rating must be an integer from 1 to 7, got {rating!r}")
    if ticks is not None and (not isinstance(ticks, list) or not all(isinstance(x, bool) for x in ticks)):
        raise ValueError("ticks must be a list of true/false, one per grid item")
    return _store(make_session, token, trial_id, "rating", {"rating": rating, "ticks": ticks})


def submit_pairwise(make_session: sessionmaker[Session], token: str, trial_id: int, choice: str) -> bool:
    """Store a pairwise choice: 'left', 'right' or 'tie' (equally similar)."""
    if choice not in ("left", "right", "tie"):
        raise ValueError(f"choice must be 'left', 'right' or 'tie', got {choice!r}")
    return _store(make_session, token, trial_id, "pairwise", {"choice": choice})


def submit_ranking(make_session: sessionmaker[Session], token: str, trial_id: int, best: int, worst: int) -> bool:
    """Store a best-worst choice, given as display positions (0-based); mapped to grids here."""
    with make_session() as s:
        grids = _owned_trial(s, token, trial_id)[0].grid_ids
    for name, pos in (("best", best), ("worst", worst)):
        if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < len(grids):
            raise ValueError(f"{name} must be a set number from 1 to {len(grids)}")
    if best == worst:
        raise ValueError("the most and the least similar set must be different")
    return _store(make_session, token, trial_id, "ranking", {"best": grids[best], "worst": grids[worst]})


def submit_questions(
    make_session: sessionmaker[Session], token: str, answers: dict[str, str | None], comment: str | None
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
        p.completed_at = utcnow()
