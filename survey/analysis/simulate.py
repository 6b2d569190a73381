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
  never as most similar. These are the answers :mod:`survey.participants.checks` lets pass, by design: the
  checks assume exactly this of attentive people;
* a share ``inattentive`` of participants answers everything at random (uniform over the rating
  points, the three pairwise options, and the ordered best/worst pairs of sets), catch screens
  included; :func:`simulate` returns which participants they were (nothing stored marks them).

The mapping from latent values to answers lives in small vectorised functions
(:func:`rating_from_latent`, :func:`pairwise_from_latent`, :func:`best_worst_from_latent`,
:func:`ticks_from_latent`; on catch screens first :func:`attentive_unrelated` and
:func:`unrelated_rating_from_latent`). :func:`simulate` uses them on the service path;
:func:`simulate_judgements` uses them to write the tidy judgements table directly (no
database, no attention checks), which is what repeated simulations (power, coverage and
calibration tests) need to be fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Condition, Grid, GridCondition, Participant, Trial
from survey.analysis.protocol_parts import PARTS, SimulatedBlock, answer_trial
from survey.analysis.response_model import CATCH_LATENT as CATCH_LATENT
from survey.analysis.response_model import ResponseModel as ResponseModel
from survey.analysis.response_model import SimulationError as SimulationError
from survey.analysis.response_model import attentive_unrelated as attentive_unrelated
from survey.analysis.response_model import best_worst_from_latent as best_worst_from_latent
from survey.analysis.response_model import pairwise_from_latent as pairwise_from_latent
from survey.analysis.response_model import parse_effects as parse_effects
from survey.analysis.response_model import rating_from_latent as rating_from_latent
from survey.analysis.response_model import ticks_from_latent as ticks_from_latent
from survey.analysis.response_model import unrelated_rating_from_latent as unrelated_rating_from_latent
from survey.participants import assignment, comprehension, service
from survey.protocols import NAMES as PROTOCOL_NAMES

DEFAULT_MODEL = ResponseModel()


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
    for name, share in (
        ("dropout", dropout),
        ("fail_comprehension", fail_comprehension),
        ("inconsistent", inconsistent),
    ):
        if not 0 <= share < 1:
            raise SimulationError(f"{name} must be a probability from 0 to below 1, got {share}")
    rng = np.random.default_rng(seed)
    effect, catch = _grid_effects(make_session, study_id, model)
    config = service.study_config(make_session, study_id)
    limit = timedelta(minutes=config.time_limit_minutes)
    screens = config.trials_per_participant * len(config.protocols) * 2  # at least every trial, checks included
    per_participant = INSTRUCTIONS_TIME + screens * ANSWER_TIME + max(ARRIVAL_GAP, limit + ARRIVAL_GAP)
    clock = datetime.now(UTC) - participants * per_participant - limit - ARRIVAL_GAP
    stored = 0
    started: list[int] = []
    inattentive: set[int] = set()
    dropped: set[int] = set()
    screened: set[int] = set()
    erratic: set[int] = set()
    for _ in range(participants):
        token = service.start_participant(make_session, study_id, {}, rng, now=clock)
        careless = rng.random() < model.inattentive
        bias = rng.normal(0, model.bias_sd)
        clock += INSTRUCTIONS_TIME
        service.finish_instructions(make_session, token, now=clock)
        with make_session() as s:
            pid = s.scalar(select(Participant.id).where(Participant.token == token))
            trials = {t.id: t for t in s.scalars(select(Trial).where(Trial.participant_id == pid))}
        if pid is None:
            raise SimulationError(f"simulated participant {token} disappeared from the database during the simulation")
        stop_after = len(trials)
        if dropout and rng.random() < dropout:
            stop_after = int(rng.integers(0, len(trials)))
            dropped.add(pid)
        if inconsistent and rng.random() < inconsistent:
            erratic.add(pid)
        started.append(pid)
        if careless:
            inattentive.add(pid)
        state = _state(make_session, token, clock)
        if state.stage == "comprehension":
            fails = bool(fail_comprehension) and rng.random() < fail_comprehension
            while state.stage == "comprehension":
                key = comprehension.answer_key(make_session, token)
                clock += ANSWER_TIME * len(key)
                comprehension.submit(make_session, token, [1 - k if fails else k for k in key], now=clock)
                state = _state(make_session, token, clock)
            if fails:
                screened.add(pid)
        answered = 0
        while state.trial is not None and answered < stop_after:  # a trial is shown exactly in the "trial" stage
            view = state.trial
            t = trials[view.trial_id]
            service.mark_shown(make_session, token, t.id, now=clock)
            clock += ANSWER_TIME
            at_random = careless or (t.is_repeat and pid in erratic)
            stored += answer_trial(make_session, token, t, view, at_random, bias, effect, catch, model, rng, clock)
            answered += 1
            state = _state(make_session, token, clock)
        if state.stage == "questions":
            service.submit_questions(make_session, token, {}, None, now=clock)
        # a dropout's time limit passes before the next participant arrives
        clock += limit + ARRIVAL_GAP if pid in dropped else ARRIVAL_GAP
    service.expire_idle(make_session, study_id, now=clock)  # the last dropouts time out too
    return Simulation(
        stored, tuple(started), frozenset(inattentive), frozenset(dropped), frozenset(screened), frozenset(erratic)
    )


# --- the same response model, written straight into a tidy judgements table ---------------------


@dataclass(frozen=True)
class Design:
    """What simulated participants can be shown, without a database.

    ``grids``: one row per grid x producing condition, columns ``grid``, ``reference``,
    ``method``, ``segmenter``, ``condition`` (as :func:`survey.study.export.tables` ``grids``).
    ``catch_grids``: the attention-check grid of each reference that has one. Participants are
    planned as the service plans them (:func:`survey.participants.assignment.plan_trials`): a block per
    protocol of ``protocols`` (in order) with the ``trials_per_participant`` least judged units
    (random tie-break) and ``attention_check_rate`` catch units.
    """

    grids: pd.DataFrame
    trials_per_participant: int
    protocols: tuple[str, ...] = PROTOCOL_NAMES
    attention_check_rate: float = 0.0
    catch_grids: Mapping[str, str] = field(default_factory=dict)
    repeat_rate: float = 0.0

    @property
    def conditions(self) -> list[str]:
        return sorted(self.grids["condition"].unique())

    @cached_property
    def pool(self) -> assignment.UnitPool:
        """The units of each protocol (computed once per design)."""
        by_ref = self.grids.drop_duplicates("grid").groupby("reference")["grid"].agg(list)
        made_by = self.grids.groupby("grid")["condition"].agg(list)
        return assignment.unit_pool(by_ref.to_dict(), self.catch_grids, self.protocols, made_by.to_dict())


def study_design(make_session: sessionmaker[Session], study_id: int) -> Design:
    """The design of a built study: its grids, catch grids and assignment settings."""
    from survey.study.export import tables

    every = tables(make_session, study_id)["grids"]
    catch = every[every["kind"] == "catch"]
    g = every[every["kind"] == "condition"]
    g = g.assign(method=g["condition"].str.split("/").str[0], segmenter=g["condition"].str.split("/", n=1).str[1])
    config = service.study_config(make_session, study_id)
    return Design(
        g[["grid", "reference", "method", "segmenter", "condition"]].reset_index(drop=True),
        config.trials_per_participant,
        config.protocols,
        config.attention_check_rate,
        dict(zip(catch["reference"], catch["grid"], strict=True)),
        config.repeat_rate,
    )


def plan_participants(
    design: Design, participants: int, rng: np.random.Generator, *, dropout: float = 0.0
) -> list[list[assignment.Unit]]:
    """The trials of ``participants`` participants, planned one after the other with
    :func:`survey.participants.assignment.plan_trials`, the counts kept in memory as the service's database
    keeps them. For the design of a built study (:func:`study_design`) and a generator in the same
    state, these are the trials :func:`survey.participants.service.start_participant` plans (catch units
    included), participant by participant.

    With ``dropout``, after each plan ``rng.random() < dropout`` decides whether the participant
    stops part-way, and then ``rng.integers(0, len(plan))`` how many trials they answer: their plan
    is cut to those, and only those count for the next participants (as in :func:`simulate`, the
    rest are given back when they time out, before the next one arrives)."""
    if not 0 <= dropout < 1:
        raise SimulationError(f"dropout must be a probability from 0 to below 1, got {dropout}")
    counts: dict[str, int] = {}
    plans = []
    for _ in range(participants):
        plan = assignment.plan_trials(
            design.pool,
            counts,
            protocols=design.protocols,
            trials_per_participant=design.trials_per_participant,
            attention_check_rate=design.attention_check_rate,
            repeat_rate=design.repeat_rate,
            rng=rng,
        )
        if dropout and rng.random() < dropout:
            plan = plan[: int(rng.integers(0, len(plan)))]
        assignment.count_plan(counts, plan)
        plans.append(plan)
    return plans


def simulate_judgements(
    design: Design,
    participants: int,
    *,
    protocol: str = "rating",
    model: ResponseModel = DEFAULT_MODEL,
    rng: np.random.Generator,
    dropout: float = 0.0,
) -> pd.DataFrame:
    """Simulated answers of one protocol as the tidy judgements table of :func:`survey.study.export.tables`
    (columns filled: response_id, participant, protocol, trial_position, is_catch, reference, grid,
    grid_position, method, segmenter, condition, rating, outcome).

    Same response model as :func:`simulate` (the same latent-to-answer functions) and the same
    assignment (:func:`plan_participants`, all of the design's protocols planned, then the
    answers of ``protocol`` generated), but no database and no attention checks: catch trials are
    planned (they take their draws and positions) but not answered, and careless raters
    (``model.inattentive``) stay in the data. ``trial_position`` is the position in the
    participant's whole plan, as in the service. ``dropout``: participants who stop part-way
    (:func:`plan_participants`); their answers so far stay in the data.
    """
    if protocol not in PROTOCOL_NAMES:
        raise SimulationError(f"protocol must be one of {', '.join(PROTOCOL_NAMES)}, got {protocol!r}")
    if participants < 1:
        raise SimulationError("participants must be at least 1")
    unknown = set(model.effects) - set(design.conditions)
    if unknown:
        raise SimulationError(
            f"effects name condition(s) {sorted(unknown)} not in the study; valid: {design.conditions}"
        )
    if protocol not in design.protocols:
        raise SimulationError(
            f"the study has no {protocol} trials (its protocols: {', '.join(design.protocols)}); simulate one of those"
        )
    if not design.pool.units[protocol]:
        raise SimulationError(f"the design has no {protocol} units")
    grid_ids = np.array(sorted(design.grids["grid"].unique()))
    eff = (
        design.grids.assign(e=design.grids["condition"].map(lambda c: model.effects.get(c, 0.0)))
        .groupby("grid")["e"]
        .mean()
        .reindex(grid_ids)
        .to_numpy()
    )
    index = {g: i for i, g in enumerate(grid_ids)}
    trials = [
        (p, pos, u.grid_ids)
        for p, plan in enumerate(plan_participants(design, participants, rng, dropout=dropout))
        for pos, u in enumerate(plan)
        if u.protocol == protocol and not (u.is_catch or u.is_repeat)
    ]
    n_trials = len(trials)
    width = max((len(gids) for _, _, gids in trials), default=1)  # every participant may drop out at once
    shown = np.full((n_trials, width), -1)  # trials x width, grids in display order, -1 = empty slot
    for t, (_, _, gids) in enumerate(trials):
        shown[t, : len(gids)] = [index[g] for g in gids]
    trial_participant = np.array([p for p, _, _ in trials])
    trial_position = np.array([pos for _, pos, _ in trials])
    careless = rng.random(participants) < model.inattentive
    bias = rng.normal(0, model.bias_sd, participants)
    valid = shown >= 0
    latent = np.where(valid, eff[np.where(valid, shown, 0)] + rng.normal(0, model.noise_sd, shown.shape), np.nan)
    lazy = careless[trial_participant]
    rating, outcome = PARTS[protocol].block(SimulatedBlock(latent, valid, lazy, bias[trial_participant], model, rng))
    t_idx, pos_idx = np.nonzero(valid)
    shown_df = pd.DataFrame(
        {
            "response_id": t_idx + 1,
            "participant": trial_participant[t_idx] + 1,
            "protocol": protocol,
            "trial_position": trial_position[t_idx],
            "is_catch": False,
            "grid": grid_ids[shown[t_idx, pos_idx]],
            "grid_position": pos_idx,
            "rating": pd.array(rating[t_idx], dtype="Int64")
            if rating is not None
            else pd.array([pd.NA] * len(t_idx), dtype="Int64"),
            "outcome": outcome[t_idx, pos_idx] if outcome is not None else None,
        }
    )
    out = shown_df.merge(design.grids, on="grid", how="left")
    out["category"] = None
    out["ticks"] = None
    out["response_ms"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["answered_at"] = None
    from survey.study.export import DICTIONARY

    return out[list(DICTIONARY["judgements"])].sort_values(
        ["response_id", "grid_position", "condition"], ignore_index=True
    )
