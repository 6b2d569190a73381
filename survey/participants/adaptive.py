"""The database side of adaptive pairs (``pairwise_assignment = "adaptive"``; the algorithm is
:mod:`survey.participants.adaptive_pairs`): the win matrix of the pairwise answers stored so far, each
participant's choice of pairwise units made from it and recorded, and the replay of every recorded
choice.

:func:`choose_pairwise` runs inside :func:`survey.participants.planning.store_trials`, under the
study-row lock that the service takes for every start, so two participants starting at once (in one
process or several) choose one after the other, each from the counts that hold the other's units. The
answers the fit reads are stored without that lock; what the fit saw is therefore recorded as it was
(the win matrix and the highest answer id in it), beside the counts and the generator's seed, in
:class:`db.models.AdaptivePlan`, and each unit chosen in :class:`db.models.AdaptiveChoice`.

:func:`replay` redoes every recorded choice with :func:`~survey.participants.adaptive_pairs.choose_units`
from the recorded state, and checks that the recorded win matrix is the one the stored answers up to the
recorded id give (on PostgreSQL an answer committed late under a lower id can break this check alone,
not the choices), and that the participant's trials are the units chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AdaptiveChoice, AdaptivePlan, Condition, Participant, Response, Trial
from survey.participants import assignment
from survey.participants.adaptive_pairs import PairUnit, choose_units
from survey.study.config import StudyConfig

#: Gains are recomputed in floating point: a replayed gain matches within this relative tolerance.
GAIN_RTOL = 1e-9
#: A pairwise answer's credit to the left grid's conditions (the right's get 1 minus it).
CREDIT = {"left": 1.0, "right": 0.0, "tie": 0.5}


def _same_gain(recorded: float | None, replayed: float | None) -> bool:
    if recorded is None or replayed is None:
        return recorded is None and replayed is None
    return bool(np.isclose(recorded, replayed, rtol=GAIN_RTOL, atol=0.0))


def pairwise_wins(
    s: Session,
    study_id: int,
    conditions: Sequence[str],
    made_by: Mapping[str, Sequence[str]],
    *,
    up_to: int | None = None,
) -> tuple[np.ndarray, int | None]:
    """The win matrix of the study's pairwise answers (rows over columns, ``conditions`` order; ties half
    a win each way; attention checks and repeats left out; a grid several conditions share credits each,
    as the report's :func:`survey.analysis.bradley_terry.win_matrix`; ``made_by``: each grid's
    conditions, :func:`survey.participants.planning.grid_conditions`), of answers with id at most
    ``up_to`` (None: all), and the highest answer id in it (None: no answer)."""
    index = {c: i for i, c in enumerate(conditions)}
    wins = np.zeros((len(conditions), len(conditions)))
    q = (
        select(Response.id, Response.choice, Trial.grid_ids)
        .join(Trial, Trial.id == Response.trial_id)
        .join(Participant, Participant.id == Trial.participant_id)
        .where(
            Participant.study_id == study_id,
            Trial.protocol == "pairwise",
            Trial.is_catch.is_(False),
            Trial.is_repeat.is_(False),
        )
    )
    if up_to is not None:
        q = q.where(Response.id <= up_to)
    last = None
    for rid, choice, (left, right) in s.execute(q):
        if choice not in CREDIT:  # the answers table's check constraint allows no other value
            raise ValueError(f"pairwise answer {rid} has no choice ({choice!r}); repair or remove it")
        credit = CREDIT[choice]
        for a in made_by[left]:
            for b in made_by[right]:
                wins[index[a], index[b]] += credit
                wins[index[b], index[a]] += 1.0 - credit
        last = rid if last is None else max(last, rid)
    return wins, last


def study_conditions(s: Session, study_id: int) -> list[str]:
    """The study's condition labels, sorted: the order of the win matrix."""
    return sorted(s.scalars(select(Condition.label).where(Condition.study_id == study_id)))


def pair_units(units: Sequence[assignment.Unit], conditions: Sequence[str], made_by: Mapping[str, Sequence[str]]):
    """Each pairwise unit's contrast: +1/m for each of the m conditions of its first grid, -1/m' for
    the second's (canonical order, before counterbalancing)."""
    index = {c: i for i, c in enumerate(conditions)}
    out = []
    for u in units:
        x = np.zeros(len(conditions))
        for grid, sign in zip(u.grid_ids, (1.0, -1.0), strict=True):
            for c in made_by[grid]:
                x[index[c]] += sign / len(made_by[grid])
        out.append(PairUnit(u.key, x))
    return out


def choose_pairwise(
    s: Session,
    study_id: int,
    participant_id: int,
    units: Sequence[assignment.Unit],
    n: int,
    *,
    made_by: Mapping[str, Sequence[str]],
    counts: Mapping[str, int],
    floor: int,
    seed: int,
) -> list[assignment.Unit]:
    """Choose ``n`` of the pairwise ``units`` for a participant from the answers stored now and the
    ``counts`` (answered or held), with a generator seeded with ``seed``; record the state and the
    choices; return the units in the order chosen. Call it under the study-row lock (see the module
    docstring)."""
    conditions = study_conditions(s, study_id)
    wins, last = pairwise_wins(s, study_id, conditions, made_by)
    pairs = pair_units(units, conditions, made_by)
    chosen = choose_units(pairs, wins, counts, n, np.random.default_rng(seed), floor=floor)
    s.add(
        AdaptivePlan(
            participant_id=participant_id,
            seed=seed,
            floor=floor,
            last_response_id=last,
            conditions=list(conditions),
            wins=wins.tolist(),
            counts={u.key: int(counts[u.key]) for u in units if u.key in counts},
        )
    )
    s.flush()  # the plan row first: the choices reference it
    s.add_all(
        AdaptiveChoice(participant_id=participant_id, position=i, unit=c.unit.key, phase=c.phase, gain=c.gain)
        for i, c in enumerate(chosen)
    )
    by_key = {u.key: u for u in units}
    return [by_key[c.unit.key] for c in chosen]


@dataclass(frozen=True)
class Replay:
    """One participant's recorded adaptive choice, redone: whether the choices (units, phases, gains),
    the recorded win matrix (against the stored answers up to the recorded id) and the trials (the
    pairwise units shown) match; ``problems`` says what differs."""

    participant_id: int
    choices: int
    choices_match: bool
    state_matches: bool
    trials_match: bool
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.choices_match and self.state_matches and self.trials_match


def replay(
    s: Session,
    study_id: int,
    units: Sequence[assignment.Unit],
    made_by: Mapping[str, Sequence[str]],
    config: StudyConfig,
) -> list[Replay]:
    """Redo every recorded adaptive choice of the study's participants (see the module docstring);
    ``units``: the study's pairwise units, ``made_by``: each grid's conditions
    (:func:`survey.participants.planning.replay_adaptive` gives both)."""
    plans = s.scalars(
        select(AdaptivePlan)
        .join(Participant, Participant.id == AdaptivePlan.participant_id)
        .where(Participant.study_id == study_id)
        .order_by(AdaptivePlan.participant_id)
    ).all()
    return [_replay_one(s, study_id, plan, units, made_by, config) for plan in plans]


def _replay_one(
    s: Session,
    study_id: int,
    plan: AdaptivePlan,
    units: Sequence[assignment.Unit],
    made_by: Mapping[str, Sequence[str]],
    config: StudyConfig,
) -> Replay:
    recorded = s.scalars(
        select(AdaptiveChoice)
        .where(AdaptiveChoice.participant_id == plan.participant_id)
        .order_by(AdaptiveChoice.position)
    ).all()
    wins = np.array(plan.wins, dtype=float).reshape(len(plan.conditions), len(plan.conditions))
    pairs = pair_units(units, plan.conditions, made_by)
    again = choose_units(
        pairs, wins, plan.counts, config.trials_per_participant, np.random.default_rng(plan.seed), floor=plan.floor
    )
    problems = []
    want = [(c.unit, c.phase) for c in recorded]
    got = [(c.unit.key, c.phase) for c in again]
    gains_agree = all(_same_gain(a.gain, b.gain) for a, b in zip(recorded, again, strict=False))
    choices_match = want == got and gains_agree
    if not choices_match:
        problems.append(f"recorded choices {want} but the replay chooses {got}" if want != got else "gains differ")
    if plan.last_response_id is None:  # no answer had been stored
        state_matches = not wins.any()
    else:
        stored, _ = pairwise_wins(s, study_id, plan.conditions, made_by, up_to=plan.last_response_id)
        state_matches = bool(np.array_equal(stored, wins))
    if not state_matches:
        problems.append(f"recorded wins differ from the answers up to id {plan.last_response_id}")
    shown = set(
        s.scalars(
            select(Trial.unit).where(
                Trial.participant_id == plan.participant_id,
                Trial.protocol == "pairwise",
                Trial.is_catch.is_(False),
                Trial.is_repeat.is_(False),
            )
        )
    )
    trials_match = shown == {c.unit for c in recorded}
    if not trials_match:
        problems.append(f"trials show {sorted(shown)}, the choices were {sorted(c.unit for c in recorded)}")
    return Replay(plan.participant_id, len(recorded), choices_match, state_matches, trials_match, tuple(problems))
