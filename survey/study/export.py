"""Tidy export of a study for re-analysis (R, pandas): judgements, participants, grids, and a
data dictionary describing every column.

``judgements``: one row per (answer, grid shown, condition that produced the grid). A grid
that several conditions produced appears once per condition; attention-check grids appear
with condition ``catch``. Repeat trials (``repeat_rate``) are not judgements: ``repeats`` pairs each
with the first answer to the same unit, and ``participants.consistency`` summarises them.
Participants are identified by a study-local number only; the recruitment platform's id stays in
the database.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple

import pandas as pd
from sqlalchemy import Row, Text, cast, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import CatalogItem, Condition, Grid, GridCondition, Participant, Response, Study, Trial
from survey.protocols import GRID_PROTOCOLS
from survey.study import protocol_parts
from survey.study.errors import StudyUnavailable
from survey.study.export_swipes import DICTIONARY as SWIPE_DICTIONARY
from survey.study.export_swipes import swipe_tables

DICTIONARY: dict[str, dict[str, str]] = {
    "judgements": {
        "response_id": "id of the answer (one per trial)",
        "participant": "study-local participant number (pseudonymous)",
        "protocol": "rating | pairwise | ranking (swipe rounds: the swipes and swipe_rounds tables)",
        "trial_position": "0-based position of the trial in the participant's sequence",
        "is_catch": "true for attention-check trials (not part of any condition's results)",
        "reference": "item_id of the reference product",
        "category": "category of the reference",
        "grid": "opaque id of the grid shown",
        "grid_position": "where the grid was shown: 0 = the only grid (rating) / left = A (pairwise) / set 1 (ranking)",
        "method": "similarity method that produced the grid (catch: attention-check grid)",
        "segmenter": "segmentation variant that produced the grid",
        "condition": "method/segmenter",
        "rating": "rating protocol: 1 (not at all similar) .. 7 (extremely similar)",
        "ticks": "rating protocol with item ticks: JSON list, per grid item, true = ticked similar",
        "outcome": "pairwise: win | loss | tie for this grid; ranking: best | worst | middle",
        "response_ms": "milliseconds from the trial's first display to the submit",
        "answered_at": "UTC time the answer was stored",
    },
    "participants": {
        "participant": "study-local participant number (pseudonymous)",
        "source": "direct | prolific | mturk",
        "started_at": "UTC time of consent",
        "trials_done_at": "UTC time of the last trial's answer (empty: not finished)",
        "completed_at": "UTC time the completion code was shown (empty: not completed)",
        "status": "active | completed | returned (stopped and left) | timed_out (no answer within the study's "
        "time_limit_minutes) | screened_out (failed the comprehension phase); only active participants change",
        "last_active_at": "UTC time of the last answer (or of consent): what the time limit runs from",
        "returned_at": "UTC time the participant stopped and left (empty: did not)",
        "timed_out_at": "UTC time the time limit passed without an answer (empty: did not time out)",
        "screened_out_at": "UTC time the comprehension phase was failed (empty: was not screened out)",
        "comprehension_attempts": "attempts at the comprehension phase (0: the study has none)",
        "consistency": "share of repeat trials answered as the first time (ratings: within one point; "
        "choices: the same grid(s)); empty: no repeat answered",
        "answers": "number of answers stored (a swipe round ended counts as one)",
        "flags": "attention-check failures (failed_check:POS) and too-fast answers (too_fast:POS), ';'-separated",
        "bot_signals": "signals of an automated participant, ';'-separated: webdriver (the browser reported "
        "automation), honeypot (a field no person sees was filled), early_answer (answered before the images "
        "loaded), constant_times (near-constant response times), identical_answers (the same answer sequence "
        "as another participant); empty: none (README 'Automated participants')",
        "browser_test": "true for the project's own browser tests (marked with the test server's secret; "
        "never flagged)",
        "demographics": "JSON object of the optional questions answered",
        "comment": "free-text comment (verbatim; escape before displaying as HTML)",
    },
    "repeats": {
        "participant": "study-local participant number (pseudonymous)",
        "protocol": "rating | pairwise | ranking",
        "reference": "item_id of the reference product",
        "unit": "what was shown twice (grid ids; opaque)",
        "first_position": "trial_position of the first showing",
        "repeat_position": "trial_position of the repeat (later, grids in other positions)",
        "first": "the first answer: rating 1..7; pairwise: the grid chosen or tie; ranking: best grid|worst grid",
        "repeat": "the answer to the repeat, in the same terms",
        "agree": "true if the answers agree (ratings: within one point; choices: identical)",
    },
    "grids": {
        "grid": "opaque grid id",
        "kind": "condition | catch",
        "reference": "item_id of the reference product",
        "items": "JSON list of the grid's item_ids, in display order",
        "condition": "method/segmenter that produced the grid (empty for catch grids)",
        "scores": "JSON list: that condition's similarity score per grid item",
    },
    **SWIPE_DICTIONARY,
}


def _repeats(s: Session, study_id: int, item: dict[int, str]) -> pd.DataFrame:
    """Each answered repeat trial beside the first answer to its unit."""
    rows = s.execute(
        select(Trial, Response)
        .join(Response, Response.trial_id == Trial.id)
        .join(Participant, Participant.id == Trial.participant_id)
        .where(Participant.study_id == study_id, Trial.is_catch.is_(False))
        .order_by(Trial.participant_id, Trial.position)
    ).all()
    first = {(t.participant_id, t.unit): (t, r) for t, r in rows if not t.is_repeat}
    out = []
    for t, r in rows:
        original = first.get((t.participant_id, t.unit.removeprefix("repeat:"))) if t.is_repeat else None
        if original is None or t.reference_id is None:  # not a repeat (swipe rounds never are)
            continue
        t0, r0 = original
        a, b = (
            protocol_parts.in_grid_terms(t0.protocol, t0.grid_ids, r0),
            protocol_parts.in_grid_terms(t.protocol, t.grid_ids, r),
        )
        agree = protocol_parts.agrees(t.protocol, a, b)
        out.append((t.participant_id, t.protocol, item[t.reference_id], t0.unit, t0.position, t.position, a, b, agree))
    return pd.DataFrame(out, columns=list(DICTIONARY["repeats"]))


class _Answer(NamedTuple):
    """One answer to a trial that is not a repeat, with what the trial showed (a row of :func:`_answers`)."""

    response_id: int
    participant: int
    protocol: str
    trial_position: int
    is_catch: bool
    reference_id: int
    grid_ids_json: str  # the trial's grid ids as JSON text: parsed once per distinct list
    rating: int | None
    ticks: list[bool] | None
    choice: str | None
    best: str | None
    worst: str | None
    response_ms: int | None
    answered_at: datetime


#: A grid's producing conditions: (method, segmenter, condition label, that condition's scores per item).
MadeBy = dict[str, list[tuple[str, str, str, list[float]]]]


def tables(make_session: sessionmaker[Session], study_id: int) -> dict[str, pd.DataFrame]:
    """The study's tidy tables by name: ``judgements``, ``participants``, ``repeats`` and ``grids``, with
    the columns of :data:`DICTIONARY`. Raises :class:`StudyUnavailable` when there is no such study."""
    with make_session() as s:
        if s.get(Study, study_id) is None:
            raise StudyUnavailable(f"no study with id {study_id}")
        item, category = _item_ids_and_categories(s, study_id)
        made_by = _made_by(s, study_id)
        grids = s.scalars(select(Grid).where(Grid.study_id == study_id).order_by(Grid.id)).all()
        answers = _answers(s, study_id)
        repeats = _repeats(s, study_id, item)
        people = _people(s, study_id)
        conditions = {label: (m, g) for made in made_by.values() for m, g, label, _ in made}
        swiped = swipe_tables(s, study_id, item, category, conditions)
    judgements = _judgements(answers, made_by, item, category)
    return {
        "judgements": judgements,
        "participants": _participants(people, judgements, repeats, swiped["swipe_rounds"]),
        "repeats": repeats,
        "grids": _grids(grids, made_by, item),
        **swiped,
    }


def _item_ids_and_categories(s: Session, study_id: int) -> tuple[dict[int, str], dict[int, str]]:
    """The study's catalog rows: database id -> item_id, and database id -> category."""
    item = dict(s.execute(select(CatalogItem.id, CatalogItem.item_id).where(CatalogItem.study_id == study_id)).all())
    category = dict(
        s.execute(select(CatalogItem.id, CatalogItem.category).where(CatalogItem.study_id == study_id)).all()
    )
    return item, category


def _made_by(s: Session, study_id: int) -> MadeBy:
    """Grid id -> the conditions that produced the grid (attention-check grids have none)."""
    made_by: MadeBy = {}
    for gid, m, g, label, scores in s.execute(
        select(GridCondition.grid_id, Condition.method, Condition.segmenter, Condition.label, GridCondition.scores)
        .join(Condition)
        .where(Condition.study_id == study_id)
    ):
        made_by.setdefault(gid, []).append((m, g, label, scores))
    return made_by


def _answers(s: Session, study_id: int) -> list[_Answer]:
    """Every answer to a non-repeat trial (repeats have their own table), in the order stored; swipe
    rounds have their own tables (:mod:`survey.study.export_swipes`).

    Plain columns, not ORM objects: building an object per answer and trial took two thirds of the
    time at 100,000 judgement rows."""
    rows = s.execute(
        select(
            Response.id,
            Response.participant_id,
            Trial.protocol,
            Trial.position,
            Trial.is_catch,
            Trial.reference_id,
            cast(Trial.grid_ids, Text),
            Response.rating,
            Response.ticks,
            Response.choice,
            Response.best,
            Response.worst,
            Response.response_ms,
            Response.created_at,
        )
        .join(Trial, Trial.id == Response.trial_id)
        .join(Participant, Participant.id == Trial.participant_id)
        .where(Participant.study_id == study_id, Trial.is_repeat.is_(False), Trial.protocol.in_(GRID_PROTOCOLS))
        .order_by(Response.id)
    )
    return list(map(_Answer._make, rows))


def _people(s: Session, study_id: int) -> Sequence[Row]:
    """The study's participants, the columns the participants table reports (named as in the model)."""
    return s.execute(
        select(
            Participant.id,
            Participant.source,
            Participant.consented_at,
            Participant.trials_done_at,
            Participant.completed_at,
            Participant.status,
            Participant.last_active_at,
            Participant.returned_at,
            Participant.timed_out_at,
            Participant.screened_out_at,
            Participant.comprehension_attempts,
            Participant.flags,
            Participant.bot_signals,
            Participant.browser_test,
            Participant.demographics,
            Participant.comment,
        )
        .where(Participant.study_id == study_id)
        .order_by(Participant.id)
    ).all()


def _judgements(
    answers: list[_Answer], made_by: MadeBy, item: dict[int, str], category: dict[int, str]
) -> pd.DataFrame:
    """One row per (answer, grid shown, condition that produced the grid); attention-check grids count
    as condition ``catch/catch``."""
    catch_grid: list[tuple[str, str, str, list[float]]] = [("catch", "catch", "catch/catch", [])]
    rows = []  # in the column order of DICTIONARY["judgements"]
    grid_lists = functools.lru_cache(maxsize=None)(json.loads)  # trials show few distinct lists of grids
    for a in answers:
        grid_ids = grid_lists(a.grid_ids_json)
        ticked = json.dumps(a.ticks) if a.ticks is not None else None
        shown = (a.response_id, a.participant, a.protocol, a.trial_position, a.is_catch)
        reference = (item[a.reference_id], category[a.reference_id])
        for pos, gid in enumerate(grid_ids):
            outcome = protocol_parts.outcome(a.protocol, pos, grid_ids, a.choice, a.best, a.worst)
            for m, g, label, _ in made_by.get(gid, catch_grid):
                rows.append(
                    (*shown, *reference, gid, pos, m, g, label, a.rating, ticked, outcome, a.response_ms, a.answered_at)
                )
    judgements = pd.DataFrame(rows, columns=list(DICTIONARY["judgements"]))
    judgements["rating"] = judgements["rating"].astype("Int64")
    judgements["response_ms"] = judgements["response_ms"].astype("Int64")
    return judgements


def _participants(
    people: Sequence[Row], judgements: pd.DataFrame, repeats: pd.DataFrame, rounds: pd.DataFrame
) -> pd.DataFrame:
    """One row per participant: timestamps, status, answers counted in ``judgements`` and swipe
    rounds ended, the share of ``repeats`` they agreed with, flags, demographics and comment."""
    consistency = repeats.groupby("participant")["agree"].mean().to_dict() if len(repeats) else {}
    counts = (
        judgements.drop_duplicates("response_id")["participant"]
        .value_counts()
        .add(rounds[rounds["outcome"] != "unfinished"]["participant"].value_counts(), fill_value=0)
    )
    return pd.DataFrame(
        [
            {
                "participant": p.id,
                "source": p.source,
                "started_at": p.consented_at,
                "trials_done_at": p.trials_done_at,
                "completed_at": p.completed_at,
                "status": p.status,
                "last_active_at": p.last_active_at,
                "returned_at": p.returned_at,
                "timed_out_at": p.timed_out_at,
                "screened_out_at": p.screened_out_at,
                "comprehension_attempts": p.comprehension_attempts,
                "consistency": consistency.get(p.id),
                "answers": int(counts.get(p.id, 0)),
                "flags": ";".join(p.flags or []),
                "bot_signals": ";".join(p.bot_signals or []),
                "browser_test": bool(p.browser_test),
                "demographics": json.dumps(p.demographics or {}),
                "comment": p.comment,
            }
            for p in people
        ],
        columns=list(DICTIONARY["participants"]),
    )


def _grids(grids: Sequence[Grid], made_by: MadeBy, item: dict[int, str]) -> pd.DataFrame:
    """One row per (grid, condition that produced it); attention-check grids once, without a condition."""
    grid_rows = []
    unmade: list[tuple[None, None, None, None]] = [(None, None, None, None)]  # a grid no condition produced
    for grid in grids:
        for _, _, made_label, made_scores in made_by.get(grid.id, unmade):
            grid_rows.append(
                {
                    "grid": grid.id,
                    "kind": grid.kind,
                    "reference": item[grid.reference_id],
                    "items": json.dumps([item[i] for i in grid.item_ids]),
                    "condition": made_label,
                    "scores": json.dumps(made_scores) if made_scores is not None else None,
                }
            )
    return pd.DataFrame(grid_rows, columns=list(DICTIONARY["grids"]))


#: A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy in which every text cell that a spreadsheet would run as a formula starts with an
    apostrophe (shown as text by Excel, LibreOffice and Google Sheets). For CSVs opened in a
    spreadsheet; R and pandas want the verbatim tables."""

    def guard(v):
        return "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v

    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(guard)
    return out


def export(
    make_session: sessionmaker[Session],
    study_id: int,
    out_dir: str | Path,
    *,
    fmt: Literal["csv", "parquet"] = "csv",
    for_spreadsheets: bool = False,
) -> list[Path]:
    """Write the tables and ``data_dictionary.csv`` into ``out_dir``; returns the files written.
    ``for_spreadsheets`` guards formula-like text cells (see :func:`spreadsheet_safe`)."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables(make_session, study_id).items():
        if for_spreadsheets:
            df = spreadsheet_safe(df)
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False)
        else:
            df.to_parquet(path, index=False)
        written.append(path)
    dictionary = pd.DataFrame(
        [{"table": t, "column": c, "description": d} for t, cols in DICTIONARY.items() for c, d in cols.items()]
    )
    dictionary.to_csv(out / "data_dictionary.csv", index=False)
    written.append(out / "data_dictionary.csv")
    return written
