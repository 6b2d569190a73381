"""The comprehension phase: practice screens whose right answer is known, before any trial.

Each practice screen shows a product and two sets: the product's own recommendations (a
condition grid of the reference) and products of another category (its attention-check grid). The
right answer is the set of the product's own category. A participant gets two attempts (Prolific's
rule for comprehension checks), each with ``config.comprehension`` screens, all answered on one
form; feedback names the screens answered wrongly. Failing both attempts means ``screened_out``
(:mod:`survey.participants.lifecycle`): the screen-out code, no trial, nothing counted as data (practice answers
are not stored; only the number of attempts and the time of passing are).

The screens of an attempt are drawn from a generator seeded by (participant id, attempt), so the
page and the check see the same screens without storing them, and the second attempt shows others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import CatalogItem, Grid, Participant, utcnow
from survey.participants import lifecycle
from survey.participants.records import participant, study_of
from survey.study.config import StudyConfig

ATTEMPTS = 2


@dataclass(frozen=True)
class PracticeScreen:
    """What a practice screen shows (no answer in it: the page never learns which set is right)."""

    reference_path: str
    grids: tuple[tuple[str, ...], tuple[str, ...]]  # set A, set B: image paths


def _screens(s: Session, p: Participant, n: int, attempt: int) -> list[tuple[PracticeScreen, int]]:
    """The attempt's screens and, for each, the position (0: A, 1: B) of the right set."""
    rows = s.execute(
        select(Grid.id, Grid.reference_id, Grid.kind, Grid.item_ids).where(Grid.study_id == p.study_id)
    ).all()
    own: dict[int, tuple[str, list[int]]] = {}
    other: dict[int, list[int]] = {}
    for gid, ref, kind, items in sorted(rows):
        if kind == "catch":
            other[ref] = items
        elif ref not in own:
            own[ref] = (gid, items)
    refs = sorted(set(own) & set(other))
    if not refs:
        raise RuntimeError(f"study {p.study_id} has no reference with an attention-check grid for practice screens")
    rng = np.random.default_rng([p.id, attempt])
    chosen = [refs[i] for i in rng.permutation(len(refs))[:n]]
    right = rng.integers(0, 2, len(chosen)).tolist()
    ids = {r for r in chosen} | {i for r in chosen for i in (*own[r][1], *other[r])}
    paths = dict(s.execute(select(CatalogItem.id, CatalogItem.path).where(CatalogItem.id.in_(ids))).all())
    out = []
    for ref, pos in zip(chosen, right, strict=True):
        sets = [tuple(paths[i] for i in own[ref][1]), tuple(paths[i] for i in other[ref])]
        if pos == 1:
            sets.reverse()
        out.append((PracticeScreen(paths[ref], (sets[0], sets[1])), pos))
    return out


def practice(s: Session, p: Participant, config: StudyConfig) -> tuple[PracticeScreen, ...]:
    """The screens of the participant's next attempt."""
    return tuple(screen for screen, _ in _screens(s, p, config.comprehension, p.comprehension_attempts + 1))


def answer_key(make_session: sessionmaker[Session], token: str) -> list[int]:
    """The right answers of the participant's next attempt (for simulated participants and tests;
    the page never calls it)."""
    with make_session() as s:
        p = participant(s, token)
        if p is None:
            raise PermissionError("unknown participant token")
        config = StudyConfig.from_dict(study_of(s, p).config)
        return [pos for _, pos in _screens(s, p, config.comprehension, p.comprehension_attempts + 1)]


@dataclass(frozen=True)
class Outcome:
    result: Literal["passed", "retry", "screened_out"]
    wrong: tuple[int, ...]  # 1-based numbers of the screens answered wrongly


def submit(
    make_session: sessionmaker[Session], token: str, answers: list[int], *, now: datetime | None = None
) -> Outcome:
    """Check one attempt (``answers``: 0 for set A, 1 for set B, per screen, in order)."""
    now = now or utcnow()
    with make_session.begin() as s:
        p = participant(s, token)
        if p is None:
            raise PermissionError("unknown participant token")
        config = StudyConfig.from_dict(study_of(s, p).config)
        if not config.comprehension or p.status != "active" or p.comprehension_passed_at is not None:
            raise PermissionError("there is no comprehension phase to answer now")
        if p.instructions_done_at is None:
            raise PermissionError("the practice screens come after the instructions")
        key = [pos for _, pos in _screens(s, p, config.comprehension, p.comprehension_attempts + 1)]
        if len(answers) != len(key) or any(a not in (0, 1) for a in answers):
            raise ValueError(f"answers must be {len(key)} choices of 0 (set A) or 1 (set B)")
        wrong = tuple(i + 1 for i, (a, k) in enumerate(zip(answers, key, strict=True)) if a != k)
        p.comprehension_attempts += 1
        p.last_active_at = now
        if not wrong:
            p.comprehension_passed_at = now
            return Outcome("passed", wrong)
        if p.comprehension_attempts >= ATTEMPTS:
            lifecycle.leave(s, p, "screened_out", now)
            return Outcome("screened_out", wrong)
        return Outcome("retry", wrong)
