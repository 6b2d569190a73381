"""Where a study stands: participants per status, places left, and progress per unit
(``lookalike study status`` and the admin page). :func:`refresh_status` times idle participants
out first (a write), so the counts are those a newcomer arriving now would meet.

Per unit: ``answered`` counts every stored answer (also the partial answers of participants who
left: they stay in the data), ``held`` the unanswered trials of active participants, and
``completed`` the answers of participants who completed. Attention checks and repeats are not
units.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Participant, Response, Study, Trial
from survey.participants import assignment, lifecycle, planning, service
from survey.study.config import StudyConfig
from survey.study.errors import StudyUnavailable


@dataclass(frozen=True)
class UnitProgress:
    protocol: str
    unit: str
    answered: int
    held: int
    completed: int


@dataclass(frozen=True)
class ProtocolProgress:
    """Answers per unit within one protocol: the spread the assignment keeps small."""

    protocol: str
    units: int
    answered_min: int
    answered_max: int
    completed_min: int
    completed_max: int
    held: int
    reached_target: int  # units with judgements_per_unit answers (all units when there is no target)


@dataclass(frozen=True)
class StudyStatus:
    study: str
    status: str  # open | closed
    participants: dict[str, int]  # per lifecycle status, every status present
    max_participants: int  # 0: unlimited
    places_left: int | None  # None: unlimited
    time_limit_minutes: int
    judgements_per_unit: int  # 0: no target
    protocols: tuple[ProtocolProgress, ...]
    units: tuple[UnitProgress, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refresh_status(make_session: sessionmaker[Session], study_id: int, *, now: datetime | None = None) -> StudyStatus:
    """Time out the study's idle participants at ``now`` (default: the time now) -- this writes -- then
    read where the study stands: the counts a newcomer arriving at ``now`` would meet."""
    service.expire_idle(make_session, study_id, now=now)
    with make_session() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise StudyUnavailable(f"no study with id {study_id}")
        config = StudyConfig.from_dict(study.config)
        per_status = _participants_per_status(s, study_id)
        pool = planning.unit_pool(s, study_id, config.protocols)
        units = _unit_progress(s, study_id, config.protocols, pool)
    target = config.judgements_per_unit
    holding = sum(per_status[s] for s in lifecycle.HOLDS_PLACE)
    return StudyStatus(
        study.name,
        study.status,
        {s: per_status.get(s, 0) for s in lifecycle.STATUSES},
        config.max_participants,
        max(config.max_participants - holding, 0) if config.max_participants else None,
        config.time_limit_minutes,
        target,
        tuple(_protocol_progress(p, len(pool.units[p]), units, target) for p in config.protocols),
        units,
    )


def _participants_per_status(s: Session, study_id: int) -> Counter[str]:
    """The study's participants counted per lifecycle status (statuses nobody has: absent)."""
    return Counter(
        dict(
            s.execute(
                select(Participant.status, func.count())
                .where(Participant.study_id == study_id)
                .group_by(Participant.status)
            ).all()
        )
    )


def _unit_progress(
    s: Session, study_id: int, protocols: tuple[str, ...], pool: assignment.UnitPool
) -> tuple[UnitProgress, ...]:
    """Per unit of ``pool``, protocol by protocol: answers stored, trials held unanswered by active
    participants, and answers of participants who completed."""
    answered = planning.answered_counts(s, study_id)
    counted = planning.unit_counts(s, study_id)
    completed = Counter(
        dict(
            s.execute(
                select(Trial.unit, func.count())
                .join(Response, Response.trial_id == Trial.id)
                .join(Participant, Participant.id == Trial.participant_id)
                .where(
                    Participant.study_id == study_id,
                    Participant.status == "completed",
                    Trial.is_catch.is_(False),
                    Trial.is_repeat.is_(False),
                )
                .group_by(Trial.unit)
            ).all()
        )
    )
    return tuple(
        UnitProgress(
            protocol,
            u.key,
            answered.get(u.key, 0),
            counted.get(u.key, 0) - answered.get(u.key, 0),
            completed.get(u.key, 0),
        )
        for protocol in protocols
        for u in pool.units[protocol]
    )


def _protocol_progress(protocol: str, n_units: int, units: tuple[UnitProgress, ...], target: int) -> ProtocolProgress:
    """The spread of answers per unit within ``protocol`` (its ``n_units`` units among ``units``), and how
    many units reached ``target`` answers."""
    mine = [u for u in units if u.protocol == protocol] or [UnitProgress(protocol, "", 0, 0, 0)]
    return ProtocolProgress(
        protocol,
        n_units,
        min(u.answered for u in mine),
        max(u.answered for u in mine),
        min(u.completed for u in mine),
        max(u.completed for u in mine),
        sum(u.held for u in mine),
        sum(1 for u in mine if u.unit and u.answered >= target),
    )


def format_status(st: StudyStatus) -> str:
    """The status as text, for the command line."""
    lines = [f"study '{st.study}' ({st.status})"]
    lines.append("participants: " + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in st.participants.items()))
    places = "unlimited" if st.places_left is None else f"{st.places_left} of {st.max_participants}"
    lines.append(f"places left: {places}; time limit {st.time_limit_minutes} min without an answer")
    for p in st.protocols:
        target = (
            f"; {p.reached_target}/{p.units} units reached {st.judgements_per_unit}" if st.judgements_per_unit else ""
        )
        lines.append(
            f"{p.protocol}: {p.units} units, answered {p.answered_min}..{p.answered_max} per unit "
            f"(completed participants {p.completed_min}..{p.completed_max}), {p.held} held by active participants"
            + target
        )
    return "\n".join(lines)
