"""The swipe protocol's export tables: ``swipes`` (every product shown in a swipe round, with its
answer) and ``swipe_rounds`` (one row per round). Part of :func:`survey.study.export.tables`.

A swipe round is a trial of protocol ``swipe`` (:mod:`survey.participants.swipes`): products of a
category shown one at a time until one is liked (it becomes the round's reference; ``phase``
``choose``), with ``reference = "pick"`` a ``pick`` among the products liked, then the products the
round's condition recommends for it (``judge``), each liked or not. Only ``judge`` rows that are
not the attention check carry the round's condition: the products of the choose phase are random
products of the category, the base rate every condition's like rate is compared with.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Participant, Response, Swipe, Trial
from survey.protocols import ROUND_PROTOCOLS, arm_of

DICTIONARY: dict[str, dict[str, str]] = {
    "swipes": {
        "participant": "study-local participant number (pseudonymous)",
        "round": "1-based number of the swipe round among the participant's swipe rounds",
        "trial_position": "0-based position of the round in the participant's sequence of trials",
        "category": "category of the round (its products and its reference)",
        "phase": "choose (a random product of the category's swipe pool) | pick (the product picked among "
        "those liked; reference = pick) | judge (a product recommended for the round's reference)",
        "seq": "1-based order of the product within the round's phase",
        "product": "item_id of the product shown",
        "reference": "judge rows: item_id of the round's reference (the product chosen); else empty",
        "position": "judge rows: 1-based place of the product in the set shown (the check counts); else empty",
        "condition": "judge rows that are not the check: method/segmenter whose top-k the product is in",
        "method": "similarity method of the condition (judge rows that are not the check)",
        "segmenter": "segmentation variant of the condition (judge rows that are not the check)",
        "is_check": "true for the attention-check product (another category's) in a judged set",
        "liked": "true = liked, false = not for me; empty: shown but not answered (the participant left)",
        "shown_at": "UTC time the product was first shown",
        "answered_at": "UTC time of the answer (empty: not answered)",
        "response_ms": "milliseconds from the product's first display to the answer",
    },
    "swipe_rounds": {
        "participant": "study-local participant number (pseudonymous)",
        "round": "1-based number of the swipe round among the participant's swipe rounds",
        "trial_position": "0-based position of the round in the participant's sequence of trials",
        "category": "category of the round",
        "condition": "method/segmenter the round was planned with (balanced within and across participants)",
        "method": "similarity method of the condition",
        "segmenter": "segmentation variant of the condition",
        "outcome": "judged (a reference was chosen and its set judged) | no_like (max_swipes products, or the "
        "whole pool, without a like) | unfinished (the participant left during the round)",
        "reference": "item_id of the product chosen (empty: none)",
        "choose_swipes": "products shown in the choose phase",
        "with_check": "true if the judged set carried an attention-check product",
        "check_failed": "true if the check product was liked; empty without a check (or before it was answered)",
        "rating": "similarity of the whole set, 1..7 (only with swipe.rate_similarity)",
        "started_at": "UTC time the round's first product was shown",
        "ended_at": "UTC time the round ended (its last answer); empty: unfinished",
    },
}

#: method, segmenter of each condition label.
Conditions = Mapping[str, tuple[str, str]]


def swipe_tables(
    s: Session, study_id: int, item: Mapping[int, str], category: Mapping[int, str], conditions: Conditions
) -> dict[str, pd.DataFrame]:
    """The ``swipes`` and ``swipe_rounds`` tables of study ``study_id`` (empty, with their columns,
    when it has no swipe rounds). ``item``/``category``: per catalog row id, its item_id and
    category; ``conditions``: (method, segmenter) per condition label."""
    rounds = s.execute(
        select(Trial, Response)
        .outerjoin(Response, Response.trial_id == Trial.id)
        .join(Participant, Participant.id == Trial.participant_id)
        .where(Participant.study_id == study_id, Trial.protocol.in_(ROUND_PROTOCOLS))
        .order_by(Trial.participant_id, Trial.position)
    ).all()
    number: dict[int, int] = {}  # trial id -> round number (rounds come ordered by participant, then position)
    for i, (t, _) in enumerate(rounds):
        same = i > 0 and rounds[i - 1][0].participant_id == t.participant_id
        number[t.id] = number[rounds[i - 1][0].id] + 1 if same else 1
    swipes = s.scalars(
        select(Swipe)
        .join(Participant, Participant.id == Swipe.participant_id)
        .where(Participant.study_id == study_id)
        .order_by(Swipe.participant_id, Swipe.trial_id, Swipe.shown_at, Swipe.id)
    ).all()
    trial = {t.id: t for t, _ in rounds}
    swipe_rows = [_swipe_row(w, trial[w.trial_id], number[w.trial_id], item, category, conditions) for w in swipes]
    by_round: dict[int, list[Swipe]] = {}
    for w in swipes:
        by_round.setdefault(w.trial_id, []).append(w)
    round_rows = [_round_row(t, r, number[t.id], by_round.get(t.id, []), item, conditions) for t, r in rounds]
    table = pd.DataFrame(swipe_rows, columns=list(DICTIONARY["swipes"]))
    for col in ("position", "response_ms"):
        table[col] = table[col].astype("Int64")
    table["liked"] = table["liked"].astype("boolean")
    summary = pd.DataFrame(round_rows, columns=list(DICTIONARY["swipe_rounds"]))
    summary["rating"] = summary["rating"].astype("Int64")
    return {"swipes": table, "swipe_rounds": summary}


def _swipe_row(
    w: Swipe, t: Trial, number: int, item: Mapping[int, str], category: Mapping[int, str], conditions: Conditions
) -> dict[str, object]:
    judged = w.phase == "judge"
    label = arm_of(t.unit)[1] if judged and not w.is_check else None
    method, segmenter = conditions[label] if label is not None else (None, None)
    return {
        "participant": w.participant_id,
        "round": number,
        "trial_position": t.position,
        "category": category[w.item_id] if not w.is_check else category[t.reference_id or w.item_id],
        "phase": w.phase,
        "seq": w.seq,
        "product": item[w.item_id],
        "reference": item[t.reference_id] if judged and t.reference_id is not None else None,
        "position": w.position,
        "condition": label,
        "method": method,
        "segmenter": segmenter,
        "is_check": w.is_check,
        "liked": w.liked,
        "shown_at": w.shown_at,
        "answered_at": w.answered_at,
        "response_ms": w.response_ms,
    }


def _round_row(
    t: Trial,
    r: Response | None,
    number: int,
    swipes: list[Swipe],
    item: Mapping[int, str],
    conditions: Conditions,
) -> dict[str, object]:
    label = arm_of(t.unit)[1]
    check = next((w for w in swipes if w.is_check), None)
    outcome = "unfinished" if r is None else ("judged" if t.reference_id is not None else "no_like")
    return {
        "participant": t.participant_id,
        "round": number,
        "trial_position": t.position,
        "category": arm_of(t.unit)[0],
        "condition": label,
        "method": conditions[label][0],
        "segmenter": conditions[label][1],
        "outcome": outcome,
        "reference": item[t.reference_id] if t.reference_id is not None else None,
        "choose_swipes": sum(1 for w in swipes if w.phase == "choose"),
        "with_check": t.with_check,
        "check_failed": check.liked if check is not None else None,
        "rating": r.rating if r is not None else None,
        "started_at": t.shown_at,
        "ended_at": r.created_at if r is not None else None,
    }
