"""Simulated participants for a built study, answering through the same service functions
the survey pages call (start, mark shown, submit), so simulated data exercises the real path.

The response model, per participant and trial:

* a grid's latent similarity is the mean effect of the conditions that produced it
  (``effects``, on a standard-normal scale; conditions not named have effect 0) plus the
  participant's bias (rating only; N(0, ``bias_sd``)) plus noise N(0, ``noise_sd``);
* rating: latent mapped to 1..7 as ``round(4 + 1.5 * latent)``, clipped; when the study asks
  for per-item ticks, each item is ticked when the grid's latent plus fresh item noise > 0;
* pairwise: left if latent(left) - latent(right) > ``tie_margin``, right if below minus the
  margin, else tie;
* ranking: best = highest latent, worst = lowest;
* attention checks (a catch screen: the unrelated set, products of another category, alone or
  beside real grids of the reference): an attentive rater sees that the unrelated set is not
  like the product. Its latent is ``CATCH_LATENT`` (-3) plus noise N(0, ``noise_sd``) as for any
  grid, but capped at the lowest latent of the real grids on the same screen (an attentive person
  never finds another category's products *more* similar than the product's own, though a poor
  real set can look as unlike it), and its rating is at most ``CATCH_RATING_MAX`` (3: never
  "somewhat similar"). So an attentive rater answers a rating check 1..3; a pairwise check with
  the real set, or "equally similar" when the real set looks as unlike the product (a difference
  within the margin); a ranking check with the unrelated set as least similar, or level with the
  lowest real set (the first of the two in display order is then picked as least similar),
  never as most similar. These are the answers :mod:`survey.participants.protocol_parts` lets pass, by design: the
  checks assume exactly this of attentive people;
* a share ``inattentive`` of participants answers everything at random (uniform over the rating
  points, the three pairwise options, and the ordered best/worst pairs of sets), catch screens
  included; :func:`simulate` returns which participants they were (nothing stored marks them).

The mapping from latent values to answers lives in small vectorised functions
(:func:`rating_from_latent`, :func:`pairwise_from_latent`, :func:`best_worst_from_latent`,
:func:`ticks_from_latent`; on catch screens first :func:`attentive_unrelated` and
:func:`unrelated_rating_from_latent`). :func:`simulate` uses them on the service path;
:func:`simulate_judgements` (:mod:`survey.analysis.simulate_tables`, re-exported here) uses them
to write the tidy judgements table directly (no database, no attention checks), which is what
repeated simulations (power, coverage and calibration tests) need to be fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Condition, Grid, GridCondition, Participant, Trial
from survey.analysis.protocol_parts import answer_trial
from survey.analysis.response_model import CATCH_LATENT as CATCH_LATENT
from survey.analysis.response_model import DEFAULT_MODEL as DEFAULT_MODEL
from survey.analysis.response_model import ResponseModel as ResponseModel
from survey.analysis.response_model import SimulationError as SimulationError
from survey.analysis.response_model import attentive_unrelated as attentive_unrelated
from survey.analysis.response_model import best_worst_from_latent as best_worst_from_latent
from survey.analysis.response_model import pairwise_from_latent as pairwise_from_latent
from survey.analysis.response_model import parse_effects as parse_effects
from survey.analysis.response_model import rating_from_latent as rating_from_latent
from survey.analysis.response_model import ticks_from_latent as ticks_from_latent
from survey.analysis.response_model import unrelated_rating_from_latent as unrelated_rating_from_latent
from survey.analysis.simulate_tables import Design as Design
from survey.analysis.simulate_tables import plan_participants as plan_participants
from survey.analysis.simulate_tables import simulate_judgements as simulate_judgements
from survey.analysis.simulate_tables import study_design as study_design
from survey.participants import comprehension, service


def _grid_effects(
    make_session: sessionmaker[Session], study_id: int, model: ResponseModel
) -> tuple[dict[str, float], frozenset[str]]:
    """The mean effect of every grid (catch grids: ``CATCH_LATENT``) and the catch grids."""
    with make_session() as s:
        rows = s.execute(
            select(GridCondition.grid_id, Condition.label)
            .join(Condition, Condition.id == GridCondition.condition_id)
            .where(Condition.study_id == study_id)
        ).all()
        catch = frozenset(s.scalars(select(Grid.id).where(Grid.study_id == study_id, Grid.kind == "catch")))
    known = {label for _, label in rows}
    unknown = set(model.effects) - known
    if unknown:
        raise SimulationError(f"effects name condition(s) {sorted(unknown)} not in the study; valid: {sorted(known)}")
    per_grid: dict[str, list[float]] = {}
    for grid, label in rows:
        per_grid.setdefault(grid, []).append(model.effects.get(label, 0.0))
    effects = {grid: float(np.mean(v)) for grid, v in per_grid.items()}
    effects.update(dict.fromkeys(catch, CATCH_LATENT))
    return effects, catch


def _state(make_session: sessionmaker[Session], token: str, now: datetime) -> service.ParticipantState:
    state = service.participant_state(make_session, token, now=now)
    if state is None:
        raise SimulationError(f"simulated participant {token} disappeared from the database during the simulation")
    return state


@dataclass(frozen=True)
class Simulation:
    """What :func:`simulate` did. ``participants``: the database ids of the participants it started
    (the ``participant`` column of the export), in order; ``inattentive``: those of them who
    answered at random; ``dropped``: those who stopped part-way (and were then timed out). Only
    returned, never stored: the database and its export carry no marker, so exclusion rules must
    find careless participants from their answers, as in a real study."""

    stored: int  # answers stored
    participants: tuple[int, ...]
    inattentive: frozenset[int]
    dropped: frozenset[int] = frozenset()
    screened_out: frozenset[int] = frozenset()  # failed the comprehension phase twice
    inconsistent: frozenset[int] = frozenset()  # answered repeat trials at random


#: The simulation clock: a participant reads the instructions for a minute and answers a screen
#: every 20 seconds; the next one arrives a minute after a participant finishes.
INSTRUCTIONS_TIME = timedelta(minutes=1)
ANSWER_TIME = timedelta(seconds=20)
ARRIVAL_GAP = timedelta(minutes=1)


def simulate(
    make_session: sessionmaker[Session],
    study_id: int,
    participants: int,
    *,
    seed: int = 0,
    model: ResponseModel = DEFAULT_MODEL,
    dropout: float = 0.0,
    fail_comprehension: float = 0.0,
    inconsistent: float = 0.0,
) -> Simulation:
    """Run ``participants`` simulated participants through the study, one after another, on a
    simulation clock that ends now (times in the database are in the past).

    With ``dropout`` (a probability), a participant stops after a number of their trials drawn
    uniformly from 0 to all but one, and is timed out by the study once its ``time_limit_minutes``
    pass without an answer; the next participant arrives after that, so the place and the units
    the dropout held are free again (the study's admission applies the time-out). Draws per
    participant: the service's plan, ``rng.random()`` (careless?), ``rng.normal`` (bias), and only
    with ``dropout`` > 0, ``rng.random()`` (drops?) and, for a dropout, ``rng.integers`` (where).

    In a study with a comprehension phase, a share ``fail_comprehension`` of participants answers
    every practice screen wrongly, twice, and is screened out (drawn with ``rng.random()`` only when
    that share is above 0); the others answer them right at the first attempt. A share
    ``inconsistent`` answers repeat trials at random (drawn with ``rng.random()`` after the dropout
    draws, only when that share is above 0), so their test-retest consistency is low."""
    if participants < 1:
        raise SimulationError("participants must be at least 1")
    shares = _Shares(dropout, fail_comprehension, inconsistent)
    config = service.study_config(make_session, study_id)
    limit = timedelta(minutes=config.time_limit_minutes)
    screens = config.trials_per_participant * len(config.protocols) * 2  # at least every trial, checks included
    per_participant = INSTRUCTIONS_TIME + screens * ANSWER_TIME + max(ARRIVAL_GAP, limit + ARRIVAL_GAP)
    effect, catch = _grid_effects(make_session, study_id, model)
    run = _Run(
        make_session,
        np.random.default_rng(seed),
        model,
        effect,
        catch,
        limit,
        clock=datetime.now(UTC) - participants * per_participant - limit - ARRIVAL_GAP,
    )
    for _ in range(participants):
        _one_participant(run, study_id, shares)
    service.expire_idle(make_session, study_id, now=run.clock)  # the last dropouts time out too
    return Simulation(
        run.stored,
        tuple(run.started),
        frozenset(run.inattentive),
        frozenset(run.dropped),
        frozenset(run.screened),
        frozenset(run.erratic),
    )


@dataclass(frozen=True)
class _Shares:
    """The shares of participants who drop out, fail the practice screens, answer repeats at random."""

    dropout: float
    fail_comprehension: float
    inconsistent: float

    def __post_init__(self) -> None:
        for name, share in dataclasses.asdict(self).items():
            if not 0 <= share < 1:
                raise SimulationError(f"{name} must be a probability from 0 to below 1, got {share}")


@dataclass
class _Run:
    """One simulation in progress: what every participant shares, the clock, and who did what."""

    make_session: sessionmaker[Session]
    rng: np.random.Generator
    model: ResponseModel
    effect: dict[str, float]
    catch: frozenset[str]
    limit: timedelta
    clock: datetime
    stored: int = 0
    started: list[int] = field(default_factory=list)
    inattentive: set[int] = field(default_factory=set)
    dropped: set[int] = field(default_factory=set)
    screened: set[int] = field(default_factory=set)
    erratic: set[int] = field(default_factory=set)


def _one_participant(run: _Run, study_id: int, shares: _Shares) -> None:
    """One participant from consent to the end, with the draws in the order :func:`simulate` states."""
    rng = run.rng
    token = service.start_participant(run.make_session, study_id, {}, rng, now=run.clock)
    careless = rng.random() < run.model.inattentive
    bias = rng.normal(0, run.model.bias_sd)
    run.clock += INSTRUCTIONS_TIME
    service.finish_instructions(run.make_session, token, now=run.clock)
    with run.make_session() as s:
        pid = s.scalar(select(Participant.id).where(Participant.token == token))
        trials = {t.id: t for t in s.scalars(select(Trial).where(Trial.participant_id == pid))}
    if pid is None:
        raise SimulationError(f"simulated participant {token} disappeared from the database during the simulation")
    stop_after = len(trials)
    if shares.dropout and rng.random() < shares.dropout:
        stop_after = int(rng.integers(0, len(trials)))
        run.dropped.add(pid)
    if shares.inconsistent and rng.random() < shares.inconsistent:
        run.erratic.add(pid)
    run.started.append(pid)
    if careless:
        run.inattentive.add(pid)
    state = _practice(run, token, pid, shares.fail_comprehension)
    answered = 0
    while state.trial is not None and answered < stop_after:  # a trial is shown exactly in the "trial" stage
        t = trials[state.trial.trial_id]
        service.mark_shown(run.make_session, token, t.id, now=run.clock)
        run.clock += ANSWER_TIME
        at_random = careless or (t.is_repeat and pid in run.erratic)
        run.stored += answer_trial(
            run.make_session, token, t, state.trial, at_random, bias, run.effect, run.catch, run.model, rng, run.clock
        )
        answered += 1
        state = _state(run.make_session, token, run.clock)
    if state.stage == "questions":
        service.submit_questions(run.make_session, token, {}, None, now=run.clock)
    # a dropout's time limit passes before the next participant arrives
    run.clock += run.limit + ARRIVAL_GAP if pid in run.dropped else ARRIVAL_GAP


def _practice(run: _Run, token: str, pid: int, fail_share: float) -> service.ParticipantState:
    """The practice screens, if the study has them: answered right at the first attempt, or (a
    share ``fail_share``, one draw) wrongly twice, which screens the participant out. Returns the
    state after them."""
    state = _state(run.make_session, token, run.clock)
    if state.stage != "comprehension":
        return state
    fails = bool(fail_share) and run.rng.random() < fail_share
    while state.stage == "comprehension":
        key = comprehension.answer_key(run.make_session, token)
        run.clock += ANSWER_TIME * len(key)
        comprehension.submit(run.make_session, token, [1 - k if fails else k for k in key], now=run.clock)
        state = _state(run.make_session, token, run.clock)
    if fails:
        run.screened.add(pid)
    return state
