"""Simulated answers written straight into the tidy judgements table: no database, no attention
checks, many studies a second. The response model is the one :mod:`survey.analysis.simulate`
states (each protocol's answers: :mod:`survey.analysis.protocol_parts`); the participants are
planned as the service plans them (:mod:`survey.participants.assignment`). For ``lookalike
power`` and the coverage and calibration tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from survey.analysis.protocol_parts import PARTS, SimulatedBlock
from survey.analysis.response_model import DEFAULT_MODEL, ResponseModel, SimulationError
from survey.participants import assignment, service
from survey.protocols import GRID_PROTOCOLS, get_protocol
from survey.protocols import NAMES as PROTOCOL_NAMES


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
    protocols: tuple[str, ...] = GRID_PROTOCOLS
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
    _check_request(design, participants, protocol, model)
    grid_ids = np.array(sorted(design.grids["grid"].unique()))
    eff = _grid_effects(design, model, grid_ids)
    trials = [
        (p, pos, u.grid_ids)
        for p, plan in enumerate(plan_participants(design, participants, rng, dropout=dropout))
        for pos, u in enumerate(plan)
        if u.protocol == protocol and not (u.is_catch or u.is_repeat)
    ]
    shown = _shown(trials, grid_ids)
    trial_participant = np.array([p for p, _, _ in trials])
    careless = rng.random(participants) < model.inattentive
    bias = rng.normal(0, model.bias_sd, participants)
    valid = shown >= 0
    latent = np.where(valid, eff[np.where(valid, shown, 0)] + rng.normal(0, model.noise_sd, shown.shape), np.nan)
    block = SimulatedBlock(latent, valid, careless[trial_participant], bias[trial_participant], model, rng)
    answer_block = PARTS[protocol].block
    if answer_block is None:  # rounds: refused by _check_request
        raise SimulationError(f"{protocol} has no answers to simulate as a block")
    rating, outcome = answer_block(block)
    t_idx, pos_idx = np.nonzero(valid)
    shown_df = pd.DataFrame(
        {
            "response_id": t_idx + 1,
            "participant": trial_participant[t_idx] + 1,
            "protocol": protocol,
            "trial_position": np.array([pos for _, pos, _ in trials])[t_idx],
            "is_catch": False,
            "grid": grid_ids[shown[t_idx, pos_idx]],
            "grid_position": pos_idx,
            "rating": pd.array(rating[t_idx], dtype="Int64")
            if rating is not None
            else pd.array([pd.NA] * len(t_idx), dtype="Int64"),
            "outcome": outcome[t_idx, pos_idx] if outcome is not None else None,
        }
    )
    return _as_judgements(shown_df.merge(design.grids, on="grid", how="left"))


def _grid_effects(design: Design, model: ResponseModel, grid_ids: np.ndarray) -> np.ndarray:
    """Each grid's effect (in ``grid_ids`` order): the mean of its producing conditions' effects."""
    effects = design.grids["condition"].map(lambda c: model.effects.get(c, 0.0))
    return design.grids.assign(e=effects).groupby("grid")["e"].mean().reindex(grid_ids).to_numpy()


def _shown(trials: list[tuple[int, int, tuple[str, ...]]], grid_ids: np.ndarray) -> np.ndarray:
    """Trials x slots: the index in ``grid_ids`` of each grid shown, in display order; -1 = empty slot."""
    width = max((len(gids) for _, _, gids in trials), default=1)  # every participant may drop out at once
    shown = np.full((len(trials), width), -1)
    index = {g: i for i, g in enumerate(grid_ids)}
    for t, (_, _, gids) in enumerate(trials):
        shown[t, : len(gids)] = [index[g] for g in gids]
    return shown


def _check_request(design: Design, participants: int, protocol: str, model: ResponseModel) -> None:
    """Refuse a simulation the design cannot run, saying why."""
    if protocol not in PROTOCOL_NAMES:
        raise SimulationError(f"protocol must be one of {', '.join(PROTOCOL_NAMES)}, got {protocol!r}")
    if participants < 1:
        raise SimulationError("participants must be at least 1")
    unknown = set(model.effects) - set(design.conditions)
    if unknown:
        raise SimulationError(
            f"effects name condition(s) {sorted(unknown)} not in the study; valid: {design.conditions}"
        )
    if get_protocol(protocol).rounds:
        raise SimulationError(
            f"{protocol} rounds are not simulated as a judgements table; simulate them through the service "
            "(lookalike simulate) or with survey.analysis.swipe_simulation"
        )
    if protocol not in design.protocols:
        raise SimulationError(
            f"the study has no {protocol} trials (its protocols: {', '.join(design.protocols)}); simulate one of those"
        )
    if not design.pool.units[protocol]:
        raise SimulationError(f"the design has no {protocol} units")


def _as_judgements(out: pd.DataFrame) -> pd.DataFrame:
    """The columns the export's judgements table has (those no simulation fills are empty), in its
    order, sorted by answer, position and condition."""
    from survey.study.export import DICTIONARY

    out["category"] = None
    out["ticks"] = None
    out["response_ms"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["answered_at"] = None
    return out[list(DICTIONARY["judgements"])].sort_values(
        ["response_id", "grid_position", "condition"], ignore_index=True
    )
