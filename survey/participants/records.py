"""The rows every participant-facing function looks up first: a participant by token, their study.

Shared by :mod:`survey.participants.service` (start, state, leaving, questions) and :mod:`survey.participants.answers`
(storing answers), so neither imports the other's internals.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Participant, Study
from survey.study.errors import StudyUnavailable as StudyUnavailable  # re-exported: the service raises it from here


def participant(s: Session, token: str) -> Participant | None:
    if not isinstance(token, str) or not token or len(token) > 64:
        return None
    return s.scalar(select(Participant).where(Participant.token == token))


def study_of(s: Session, p: Participant) -> Study:
    """The participant's study; the foreign key (ON DELETE CASCADE) keeps it from being missing."""
    study = s.get(Study, p.study_id)
    if study is None:
        raise StudyUnavailable(
            f"participant {p.id} belongs to study {p.study_id}, which does not exist; "
            "the database is inconsistent, restore it from a backup"
        )
    return study
