"""Participant service: the only code the survey pages call to read or write study data.

Every function runs in its own short transaction. Nothing returned here names a method
or segmenter: participants only ever see grids, never the grid->condition map.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from db.models import CatalogItem, Grid, Participant, Response, Study, Trial, utcnow

#: URL parameters that identify a recruited participant, by platform.
EXTERNAL_ID_PARAMS = {"prolific": "PROLIFIC_PID", "mturk": "workerId"}
RECORDED_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "assignmentId", "hitId")
MAX_PARAM_LEN = 200


class StudyUnavailable(LookupError):
    pass


@dataclass(frozen=True)
class StudyInfo:
    id: int
    name: str
    status: str


@dataclass(frozen=True)
class TrialView:
    trial_id: int
    number: int  # 1-based position shown to the participant
    reference_path: str
    item_paths: tuple[str, ...]


@dataclass(frozen=True)
class ParticipantState:
    stage: Literal["instructions", "trial", "done"]
    answered: int
    total: int
    trial: TrialView | None = None
    completion_code: str | None = None


def current_study(make_session: sessionmaker[Session], name: str | None = None) -> StudyInfo:
    """The study to serve: the one named, else the most recently built."""
    with make_session() as s:
        q = select(Study).order_by(Study.id.desc())
        if name:
            q = select(Study).where(Study.name == name)
        study = s.scalars(q).first()
        if study is None:
            raise StudyUnavailable(f"no study named '{name}'" if name else
                                   "no study has been built yet; run `lookalike build` or `lookalike demo`")
        return StudyInfo(study.id, study.name, study.status)


def _clean_params(params: dict[str, Any]) -> dict[str, str]:
    return {k: str(params[k])[:MAX_PARAM_LEN] for k in RECORDED_PARAMS if params.get(k)}


def start_participant(make_session: sessionmaker[Session], study_id: int, url_params: dict[str, Any],
                      rng: np.random.Generator | None = None) -> str:
    """Create a consented participant with balanced, randomly ordered trials; return its token.

    A participant arriving again with the same platform id (e.g. ``PROLIFIC_PID``)
    resumes: the existing token is returned and nothing new is created.
    """
    rng = rng or np.random.default_rng()
    params = _clean_params(url_params)
    source, external_id = "direct", None
    for platform, key in EXTERNAL_ID_PARAMS.items():
        if params.get(key):
            source, external_id = platform, params[key]
            break
    with make_session.begin() as s:
        study = s.get(Study, study_id)
        if study is None or study.status != "open":
            raise StudyUnavailable("this study is not accepting participants")
        if external_id is not None:
            known = s.scalar(select(Participant).where(Participant.study_id == study_id,
                                                       Participant.external_id == external_id))
            if known is not None:
                return known.token
        p = Participant(study_id=study_id, token=secrets.token_urlsafe(24), external_id=external_id,
                        source=source, url_params=params, consented_at=utcnow())
        s.add(p)
        s.flush()
        for pos, grid_id in enumerate(_assign_grids(s, study, rng)):
            s.add(Trial(participant_id=p.id, position=pos, grid_id=grid_id, protocol="rating"))
        return p.token


def _assign_grids(s: Session, study: Study, rng: np.random.Generator) -> list[str]:
    """Least-judged grids first (random tie-break), in random order."""
    n = int(study.config.get("trials_per_participant", 12))
    counts = dict(s.execute(select(Grid.id, func.count(Trial.id)).outerjoin(Trial, Trial.grid_id == Grid.id)
                            .where(Grid.study_id == study.id).group_by(Grid.id)).all())
    ids = sorted(counts)
    tiebreak = rng.permutation(len(ids))
    chosen = [g for _, _, g in sorted(zip((counts[g] for g in ids), tiebreak, ids))][:n]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def _participant(s: Session, token: str) -> Participant | None:
    if not token or len(token) > 64:
        return None
    return s.scalar(select(Participant).where(Participant.token == token))


def participant_state(make_session: sessionmaker[Session], token: str) -> ParticipantState | None:
    """Where a participant is; ``None`` for an unknown token."""
    with make_session() as s:
        p = _participant(s, token)
        if p is None:
            return None
        trials = s.scalars(select(Trial).where(Trial.participant_id == p.id).order_by(Trial.position)).all()
        answered_ids = set(s.scalars(select(Response.trial_id).where(Response.participant_id == p.id)))
        total, answered = len(trials), len(answered_ids)
        if p.instructions_done_at is None:
            return ParticipantState("instructions", answered, total)
        pending = [t for t in trials if t.id not in answered_ids]
        if not pending:
            code = s.scalar(select(Study.completion_code).where(Study.id == p.study_id))
            return ParticipantState("done", answered, total, completion_code=code)
        t = pending[0]
        paths = dict(s.execute(select(CatalogItem.id, CatalogItem.path)
                               .where(CatalogItem.id.in_([*t.grid.item_ids, t.grid.reference_id]))).all())
        view = TrialView(t.id, answered + 1, paths[t.grid.reference_id],
                         tuple(paths[i] for i in t.grid.item_ids))
        return ParticipantState("trial", answered, total, trial=view)


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
        t = _owned_trial(s, token, trial_id)
        if t.shown_at is None:
            t.shown_at = utcnow()


def _owned_trial(s: Session, token: str, trial_id: int) -> Trial:
    p = _participant(s, token)
    t = s.get(Trial, trial_id)
    if p is None or t is None or t.participant_id != p.id:
        raise PermissionError("this trial does not belong to this participant")
    return t


def _insert_ignore(s: Session, table, values: dict[str, Any]) -> bool:
    dialect = s.get_bind().dialect.name
    ins = {"sqlite": sqlite_insert, "postgresql": pg_insert}.get(dialect)
    if ins is None:
        raise NotImplementedError(f"database dialect '{dialect}' is not supported (use SQLite or PostgreSQL)")
    result = s.execute(ins(table).values(**values).on_conflict_do_nothing())
    return result.rowcount == 1


def submit_rating(make_session: sessionmaker[Session], token: str, trial_id: int, rating: int) -> bool:
    """Store one rating; ``False`` when this trial was already answered (nothing changes)."""
    if not isinstance(rating, int) or not 1 <= rating <= 7:
        raise ValueError(f"rating must be an integer from 1 to 7, got {rating!r}")
    with make_session.begin() as s:
        t = _owned_trial(s, token, trial_id)
        now = datetime.now(timezone.utc)
        shown = t.shown_at
        if shown is not None and shown.tzinfo is None:  # SQLite returns naive datetimes
            shown = shown.replace(tzinfo=timezone.utc)
        ms = int((now - shown).total_seconds() * 1000) if shown else None
        stored = _insert_ignore(s, Response.__table__, {"trial_id": t.id, "participant_id": t.participant_id,
                                                        "rating": rating, "response_ms": ms, "created_at": now})
        p = s.get(Participant, t.participant_id)
        n_trials = s.scalar(select(func.count(Trial.id)).where(Trial.participant_id == p.id))
        n_done = s.scalar(select(func.count(Response.id)).where(Response.participant_id == p.id))
        if n_done >= n_trials and p.completed_at is None:
            p.completed_at = now
        return stored
