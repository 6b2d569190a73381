"""What the admin page shows: study progress, participants, timing. Pure reads.

Progress counts judgements per (reference, condition) -- how far the study is, not what
it found. Results by condition come from :mod:`survey.analysis.conditions` and are shown only when
the researcher unblinds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import CatalogItem, Condition, GridCondition, Participant, Response, Trial


@dataclass(frozen=True)
class Overview:
    participants: int
    in_progress: int
    completed: int
    flagged: int
    answers: int
    median_trial_seconds: float | None


def overview(make_session: sessionmaker[Session], study_id: int) -> Overview:
    with make_session() as s:
        people = s.execute(
            select(Participant.completed_at, Participant.flags, Participant.status).where(
                Participant.study_id == study_id
            )
        ).all()
        times = s.scalars(
            select(Response.response_ms)
            .join(Participant)
            .where(Participant.study_id == study_id, Response.response_ms.is_not(None))
        ).all()
    completed = sum(1 for done, _, _ in people if done is not None)
    active = sum(
        1 for _, _, status in people if status == "active"
    )  # not those who left (survey.participants.lifecycle)
    median = float(pd.Series(times).median()) / 1000 if times else None
    return Overview(len(people), active, completed, sum(1 for _, f, _ in people if f), len(times), median)


def progress(make_session: sessionmaker[Session], study_id: int) -> pd.DataFrame:
    """Judgements so far per reference x condition x protocol (attention checks excluded)."""
    with make_session() as s:
        answered = s.execute(
            select(Trial.protocol, Trial.grid_ids, CatalogItem.item_id)
            .join(Response, Response.trial_id == Trial.id)
            .join(CatalogItem, CatalogItem.id == Trial.reference_id)
            .join(Participant, Participant.id == Trial.participant_id)
            .where(Participant.study_id == study_id, Trial.is_catch.is_(False), Trial.is_repeat.is_(False))
        ).all()
        made_by = s.execute(
            select(GridCondition.grid_id, Condition.label)
            .join(Condition, Condition.id == GridCondition.condition_id)
            .where(Condition.study_id == study_id)
        ).all()
    conditions: dict[str, list[str]] = {}
    for grid, label in made_by:
        conditions.setdefault(grid, []).append(label)
    rows = [(ref, cond, protocol) for protocol, grids, ref in answered for g in grids for cond in conditions.get(g, [])]
    df = pd.DataFrame(rows, columns=["reference", "condition", "protocol"])
    if df.empty:
        return pd.DataFrame(columns=["reference", "condition", "protocol", "judgements"])
    return df.value_counts().rename("judgements").reset_index().sort_values(["protocol", "reference", "condition"])


def participants_table(make_session: sessionmaker[Session], study_id: int) -> pd.DataFrame:
    """One row per participant: pseudonymous number, source, status, answers, flags, signals of automation."""
    with make_session() as s:
        people = s.execute(
            select(
                Participant.id,
                Participant.source,
                Participant.created_at,
                Participant.status,
                Participant.flags,
                Participant.bot_signals,
            )
            .where(Participant.study_id == study_id)
            .order_by(Participant.id)
        ).all()
        counts = pd.Series(
            [
                pid
                for (pid,) in s.execute(
                    select(Response.participant_id).join(Participant).where(Participant.study_id == study_id)
                )
            ]
        ).value_counts()
    return pd.DataFrame(
        [
            {
                "participant": pid,
                "source": src,
                "started": created,
                "status": status.replace("_", " "),
                "answers": int(counts.get(pid, 0)),
                "flags": ", ".join(flags or []),
                "bot signals": ", ".join(signals or []),
            }
            for pid, src, created, status, flags, signals in people
        ]
    )


def comments(make_session: sessionmaker[Session], study_id: int) -> pd.DataFrame:
    """Participants' free-text comments, verbatim (show them as data, never as Markdown/HTML)."""
    with make_session() as s:
        rows = s.execute(
            select(Participant.id, Participant.comment)
            .where(Participant.study_id == study_id, Participant.comment.is_not(None))
            .order_by(Participant.id)
        ).all()
    return pd.DataFrame(rows, columns=["participant", "comment"])
