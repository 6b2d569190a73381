"""Participant service: the only code the survey pages call to read or write study data.

Every function runs in its own short transaction. Nothing returned here names a method,
a segmenter or a grid id: participants see images and positions ("A", "Set 2") only; the
positions are mapped back to grids on the server.
"""

from __future__ import annotations

import itertools
import math
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from db.models import CatalogItem, Grid, Participant, Response, Study, Trial, utcnow

from .config import MAX_RANKING_GRIDS, StudyConfig

#: URL parameters that identify a recruited participant, by platform.
EXTERNAL_ID_PARAMS = {"prolific": "PROLIFIC_PID", "mturk": "workerId"}
RECORDED_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "assignmentId", "hitId")
MAX_PARAM_LEN = 200
MAX_COMMENT_LEN = 5000
MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys; larger ids cannot exist (and PostgreSQL rejects them)
#: A catch grid (products of another category) rated above this fails a rating check.
CATCH_RATING_MAX = 3


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
    protocol: Literal["rating", "pairwise", "ranking"]
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
            raise StudyUnavailable(f"no study named '{name}'" if name else
                                   "no study has been built yet; run `lookalike build` or `lookalike demo`")
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
        return StudyConfig.from_dict(s.get(Study, p.study_id).config)


def _plain_text(value: object, limit: int, keep: str = "") -> str:
    """``value`` as text without control characters (NUL cannot even be stored in PostgreSQL),
    cut to ``limit`` characters. Everything else is kept verbatim; it is data, never markup."""
    text = str(value)
    return "".join(c for c in text[: limit * 2] if c in keep or unicodedata.category(c) != "Cc")[:limit]


def _clean_params(params: dict[str, Any]) -> dict[str, str]:
    """Only the recruitment parameters, each cut to MAX_PARAM_LEN; anything else in the URL is dropped."""
    clean = {k: _plain_text(params[k], MAX_PARAM_LEN).strip() for k in RECORDED_PARAMS if params.get(k)}
    return {k: v for k, v in clean.items() if v}


def set_study_status(make_session: sessionmaker[Session], study_id: int, status: Literal["open", "closed"]) -> None:
    """Open or close a study. A closed study refuses new participants; those who started finish."""
    if status not in ("open", "closed"):
        raise ValueError(f"status must be 'open' or 'closed', got {status!r}")
    with make_session.begin() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise StudyUnavailable(f"no study with id {study_id}")
        study.status = status


# --- assignment ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Unit:
    key: str
    protocol: str
    reference_id: int
    grid_ids: tuple[str, ...]


def study_units(s: Session, study_id: int, protocol: str) -> list[_Unit]:
    """Everything that can be judged with ``protocol``: grids (rating), pairs of distinct grids
    of one reference (pairwise), or all distinct grids of one reference (ranking)."""
    by_ref: dict[int, list[str]] = {}
    for gid, ref in s.execute(select(Grid.id, Grid.reference_id).where(Grid.study_id == study_id,
                                                                        Grid.kind == "condition").order_by(Grid.id)):
        by_ref.setdefault(ref, []).append(gid)
    units: list[_Unit] = []
    for ref, gids in sorted(by_ref.items()):
        if protocol == "rating":
            units += [_Unit(f"rating:{g}", protocol, ref, (g,)) for g in gids]
        elif protocol == "pairwise":
            units += [_Unit(f"pairwise:{a}|{b}", protocol, ref, (a, b)) for a, b in itertools.combinations(gids, 2)]
        elif len(gids) >= 2:  # ranking
            units.append(_Unit(f"ranking:{ref}", protocol, ref, tuple(gids[:MAX_RANKING_GRIDS])))
    return units


def _least_judged(s: Session, study_id: int, units: list[_Unit], n: int, rng: np.random.Generator) -> list[_Unit]:
    """The ``n`` units with the fewest assigned trials so far, random tie-break."""
    counts = dict(s.execute(select(Trial.unit, func.count(Trial.id)).join(Participant)
                            .where(Participant.study_id == study_id, Trial.is_catch.is_(False))
                            .group_by(Trial.unit)).all())
    tiebreak = rng.permutation(len(units))
    order = sorted(range(len(units)), key=lambda i: (counts.get(units[i].key, 0), tiebreak[i]))
    return [units[i] for i in order[:n]]


def _catch_units(s: Session, study_id: int, protocol: str, n: int, rng: np.random.Generator) -> list[_Unit]:
    """Attention checks: a catch grid (another category's products) alone, against a real grid,
    or among the real grids; the right answer is known (low rating / the other side / worst)."""
    catch = {ref: gid for gid, ref in s.execute(select(Grid.id, Grid.reference_id)
                                                 .where(Grid.study_id == study_id, Grid.kind == "catch"))}
    real = {u.reference_id: u for u in study_units(s, study_id, "ranking" if protocol == "ranking" else "rating")}
    refs = sorted(set(catch) & set(real))
    out = []
    for ref in [refs[i] for i in rng.permutation(len(refs))[:n]]:
        if protocol == "rating":
            grids: tuple[str, ...] = (catch[ref],)
        elif protocol == "pairwise":
            grids = (real[ref].grid_ids[0], catch[ref])
        else:
            grids = (*real[ref].grid_ids[: MAX_RANKING_GRIDS - 1], catch[ref])
        out.append(_Unit(f"catch:{protocol}:{catch[ref]}", protocol, ref, grids))
    return out


def _plan_trials(s: Session, study: Study, config: StudyConfig, rng: np.random.Generator) -> list[_Unit]:
    """Blocks by protocol (config order); within a block, random order and positions."""
    plan: list[_Unit] = []
    for protocol in config.protocols:
        units = study_units(s, study.id, protocol)
        chosen = _least_judged(s, study.id, units, config.trials_per_participant, rng)
        n_catch = math.ceil(config.attention_check_rate * len(chosen)) if config.attention_check_rate else 0
        block = chosen + _catch_units(s, study.id, protocol, n_catch, rng)
        for i in rng.permutation(len(block)):
            u = block[i]
            plan.append(_Unit(u.key, u.protocol, u.reference_id,
                              tuple(u.grid_ids[j] for j in rng.permutation(len(u.grid_ids)))))
    return plan


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
        # Lock the study row first (a row lock in PostgreSQL, the write lock in SQLite), so that
        # concurrent starts, in one process or several, run one after another: each sees every
        # earlier participant (max_participants, a returning platform id, least-judged counts).
        s.execute(update(Study).where(Study.id == study_id).values(status=Study.status))
        study = s.get(Study, study_id)
        if study is None or study.status != "open":
            raise StudyUnavailable("this study is not accepting participants")
        if external_id is not None:
            known = s.scalar(select(Participant).where(Participant.study_id == study_id,
                                                       Participant.external_id == external_id))
            if known is not None:
                return known.token
        config = StudyConfig.from_dict(study.config)
        if config.max_participants:
            n = s.scalar(select(func.count(Participant.id)).where(Participant.study_id == study_id))
            if n >= config.max_participants:
                raise StudyUnavailable("this study is full")
        p = Participant(study_id=study_id, token=secrets.token_urlsafe(24), external_id=external_id,
                        source=source, url_params=params, consented_at=utcnow(), flags=[], demographics={})
        s.add(p)
        s.flush()
        for pos, u in enumerate(_plan_trials(s, study, config, rng)):
            s.add(Trial(participant_id=p.id, position=pos, protocol=u.protocol, reference_id=u.reference_id,
                        grid_ids=list(u.grid_ids), unit=u.key, is_catch=u.key.startswith("catch:")))
        return p.token


# --- reading state ---------------------------------------------------------------------------

def _participant(s: Session, token: str) -> Participant | None:
    if not isinstance(token, str) or not token or len(token) > 64:
        return None
    return s.scalar(select(Participant).where(Participant.token == token))


def participant_state(make_session: sessionmaker[Session], token: str) -> ParticipantState | None:
    """Where a participant is; ``None`` for an unknown token."""
    with make_session() as s:
        p = _participant(s, token)
        if p is None:
            return None
        study = s.get(Study, p.study_id)
        config = StudyConfig.from_dict(study.config)
        trials = s.scalars(select(Trial).where(Trial.participant_id == p.id).order_by(Trial.position)).all()
        answered_ids = set(s.scalars(select(Response.trial_id).where(Response.participant_id == p.id)))
        total, answered = len(trials), len(answered_ids)
        base = dict(answered=answered, total=total, protocols=config.protocols)
        if p.instructions_done_at is None:
            return ParticipantState("instructions", **base)
        pending = [t for t in trials if t.id not in answered_ids]
        if not pending:
            if p.completed_at is None and (config.demographics or config.ask_comment):
                return ParticipantState("questions", **base)
            return ParticipantState("done", **base, completion_code=study.completion_code,
                                    redirect_url=config.redirect_url)
        t = pending[0]
        grids = {g.id: g for g in s.scalars(select(Grid).where(Grid.id.in_(t.grid_ids)))}
        ids = {t.reference_id, *(i for g in grids.values() for i in g.item_ids)}
        paths = dict(s.execute(select(CatalogItem.id, CatalogItem.path).where(CatalogItem.id.in_(ids))).all())
        view = TrialView(t.id, answered + 1, t.protocol, paths[t.reference_id],
                         tuple(tuple(paths[i] for i in grids[g].item_ids) for g in t.grid_ids),
                         ticks=config.rating_item_ticks and t.protocol == "rating")
        return ParticipantState("trial", **base, trial=view)


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
    valid = (isinstance(token, str) and 0 < len(token) <= 64 and isinstance(trial_id, int)
             and not isinstance(trial_id, bool) and 0 < trial_id <= MAX_ROW_ID)
    row = s.execute(select(Trial, Participant).join(Participant, Trial.participant_id == Participant.id)
                    .where(Participant.token == token, Trial.id == trial_id)).first() if valid else None
    if row is None:
        raise PermissionError("this trial does not belong to this participant")
    return row[0], row[1]


def _insert_ignore(s: Session, table, values: dict[str, Any]) -> bool:
    dialect = s.get_bind().dialect.name
    ins = {"sqlite": sqlite_insert, "postgresql": pg_insert}.get(dialect)
    if ins is None:
        raise NotImplementedError(f"database dialect '{dialect}' is not supported (use SQLite or PostgreSQL)")
    # RETURNING, not rowcount: drivers differ in what rowcount reports for ON CONFLICT DO NOTHING
    inserted = s.execute(ins(table).values(**values).on_conflict_do_nothing().returning(*table.primary_key))
    return inserted.first() is not None


def _failed_check(s: Session, t: Trial, answer: dict[str, Any]) -> bool:
    catch = s.scalar(select(Grid.id).where(Grid.id.in_(t.grid_ids), Grid.kind == "catch"))
    if t.protocol == "rating":
        return answer["rating"] > CATCH_RATING_MAX
    if t.protocol == "pairwise":
        return answer["choice"] != ("right" if t.grid_ids[0] == catch else "left")
    return answer["worst"] != catch


def _store(make_session: sessionmaker[Session], token: str, trial_id: int, protocol: str,
           answer: dict[str, Any]) -> bool:
    """Insert the answer unless the trial was answered already; evaluate attention checks and
    response time (flags are recorded, never shown to the participant)."""
    with make_session.begin() as s:
        t, p = _owned_trial(s, token, trial_id)
        if t.protocol != protocol:
            raise ValueError(f"trial {trial_id} is a {t.protocol} trial, not {protocol}")
        now = datetime.now(timezone.utc)
        shown = t.shown_at
        if shown is not None and shown.tzinfo is None:  # SQLite returns naive datetimes
            shown = shown.replace(tzinfo=timezone.utc)
        ms = int((now - shown).total_seconds() * 1000) if shown else None
        stored = _insert_ignore(s, Response.__table__, {"trial_id": t.id, "participant_id": t.participant_id,
                                                        "response_ms": ms, "created_at": now, **answer})
        if not stored:
            return False
        config = StudyConfig.from_dict(s.get(Study, p.study_id).config)
        flags = list(p.flags or [])
        if t.is_catch and _failed_check(s, t, answer):
            flags.append(f"failed_check:{t.position}")
        if config.min_response_ms and ms is not None and ms < config.min_response_ms:
            flags.append(f"too_fast:{t.position}")
        p.flags = flags
        n_trials, n_done = s.execute(select(func.count(Trial.id), func.count(Response.id)).select_from(Trial)
                                     .outerjoin(Response, Response.trial_id == Trial.id)
                                     .where(Trial.participant_id == p.id)).one()
        if n_done >= n_trials and p.trials_done_at is None:
            p.trials_done_at = now
            if not (config.demographics or config.ask_comment):
                p.completed_at = now
        return True


def submit_rating(make_session: sessionmaker[Session], token: str, trial_id: int, rating: int,
                  ticks: list[bool] | None = None) -> bool:
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


def submit_questions(make_session: sessionmaker[Session], token: str, answers: dict[str, str],
                     comment: str | None) -> None:
    """Store the optional closing questions and complete the participation (idempotent)."""
    with make_session.begin() as s:
        p = _participant(s, token)
        if p is None:
            raise PermissionError("unknown participant token")
        if p.completed_at is not None:
            return
        config = StudyConfig.from_dict(s.get(Study, p.study_id).config)
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
        p.comment = _plain_text(comment or "", MAX_COMMENT_LEN, keep="\n\t").strip() or None
        p.completed_at = utcnow()
