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
  never as most similar. These are the answers :mod:`survey.checks` lets pass, by design: the
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
from functools import cached_property

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Condition, Grid, GridCondition, Participant, Trial
from similarity.errors import UserError

from .. import assignment, service
from ..checks import CATCH_RATING_MAX
from ..config import PROTOCOLS

#: Latent similarity of an unrelated set (another category's products), before an attentive
#: rater's view caps it (:func:`attentive_unrelated`).
CATCH_LATENT = -3.0


class SimulationError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class ResponseModel:
    effects: dict[str, float] = field(default_factory=dict)  # "method/segmenter" -> effect
    noise_sd: float = 1.0
    bias_sd: float = 0.5
    inattentive: float = 0.0
    tie_margin: float = 0.25


# --- the response model: latent similarity -> answer (vectorised) ---------------------------------


def rating_from_latent(latent, bias=0.0) -> np.ndarray:
    """The 1..7 rating of a grid: ``round(4 + 1.5 * (latent + bias))`` (half to even), clipped."""
    return np.clip(np.round(4 + 1.5 * (np.asarray(latent, dtype=float) + bias)), 1, 7).astype(int)


def ticks_from_latent(latent, item_noise) -> np.ndarray:
    """Per-item "similar" ticks: the grid's latent plus fresh item noise above 0."""
    return np.asarray(latent, dtype=float) + np.asarray(item_noise, dtype=float) > 0


def pairwise_from_latent(diff, tie_margin: float) -> np.ndarray:
    """'left' if latent(left) - latent(right) > tie_margin, 'right' if below -tie_margin, else 'tie'."""
    d = np.asarray(diff, dtype=float)
    return np.where(d > tie_margin, "left", np.where(d < -tie_margin, "right", "tie"))


def attentive_unrelated(latent, unrelated) -> np.ndarray:
    """An attentive rater's latents on a catch screen: the unrelated grid's latent (``unrelated``
    marks it along the last axis) capped at the lowest latent of the real grids beside it, so the
    unrelated set is never judged more similar than a set of the product's own category. A screen
    without a real grid (rating) is returned unchanged; NaN marks an empty slot."""
    lat = np.asarray(latent, dtype=float)
    mask = np.broadcast_to(np.asarray(unrelated, dtype=bool), lat.shape)
    lowest_real = np.where(mask | np.isnan(lat), np.inf, lat).min(axis=-1, keepdims=True)
    return np.where(mask, np.minimum(lat, lowest_real), lat)


def unrelated_rating_from_latent(latent, bias=0.0) -> np.ndarray:
    """An attentive rater's rating of an unrelated set: :func:`rating_from_latent`, at most
    ``CATCH_RATING_MAX`` (never "somewhat similar" or more)."""
    return np.minimum(rating_from_latent(latent, bias), CATCH_RATING_MAX)


def best_worst_from_latent(latent) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the highest (best) and lowest (worst) latent along the last axis;
    NaN marks an empty slot."""
    lat = np.asarray(latent, dtype=float)
    return np.nanargmax(lat, axis=-1), np.nanargmin(lat, axis=-1)


def parse_effects(spec: str | None) -> dict[str, float]:
    """``method/segmenter=value,...`` -> dict."""
    out: dict[str, float] = {}
    for part in filter(None, (spec or "").split(",")):
        key, eq, value = part.partition("=")
        if not eq or "/" not in key:
            raise SimulationError(
                f"effect '{part}' needs the form method/segmenter=value, e.g. efficientnet/u2netp=0.5"
            )
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise SimulationError(f"effect '{part}': '{value}' is not a number") from None
    return out


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


def _state(make_session: sessionmaker[Session], token: str) -> service.ParticipantState:
    state = service.participant_state(make_session, token)
    if state is None:
        raise SimulationError(f"simulated participant {token} disappeared from the database during the simulation")
    return state


@dataclass(frozen=True)
class Simulation:
    """What :func:`simulate` did. ``participants``: the database ids of the participants it started
    (the ``participant`` column of the export), in order; ``inattentive``: those of them who
    answered at random. Only returned, never stored: the database and its export carry no marker,
    so exclusion rules must find careless participants from their answers, as in a real study."""

    stored: int  # answers stored
    participants: tuple[int, ...]
    inattentive: frozenset[int]


def simulate(
    make_session: sessionmaker[Session],
    study_id: int,
    participants: int,
    *,
    seed: int = 0,
    model: ResponseModel = ResponseModel(),
) -> Simulation:
    """Run ``participants`` simulated participants through the study."""
    if participants < 1:
        raise SimulationError("participants must be at least 1")
    rng = np.random.default_rng(seed)
    effect, catch = _grid_effects(make_session, study_id, model)
    stored = 0
    started: list[int] = []
    inattentive: set[int] = set()
    for _ in range(participants):
        token = service.start_participant(make_session, study_id, {}, rng)
        careless = rng.random() < model.inattentive
        bias = rng.normal(0, model.bias_sd)
        service.finish_instructions(make_session, token)
        with make_session() as s:
            pid = s.scalar(select(Participant.id).where(Participant.token == token))
            trials = {t.id: t for t in s.scalars(select(Trial).where(Trial.participant_id == pid))}
        if pid is None:
            raise SimulationError(f"simulated participant {token} disappeared from the database during the simulation")
        started.append(pid)
        if careless:
            inattentive.add(pid)
        state = _state(make_session, token)
        while state.trial is not None:  # a trial is shown exactly in the "trial" stage
            view = state.trial
            t = trials[view.trial_id]
            service.mark_shown(make_session, token, t.id)
            latent = np.array([effect[g] + rng.normal(0, model.noise_sd) for g in t.grid_ids])
            attentive_check = t.is_catch and not careless
            if attentive_check:  # an attentive view of the unrelated set (module docstring)
                latent = attentive_unrelated(latent, [g in catch for g in t.grid_ids])
            if t.protocol == "rating":
                if careless:
                    rating = int(rng.integers(1, 8))
                else:
                    to_rating = unrelated_rating_from_latent if attentive_check else rating_from_latent
                    rating = int(to_rating(latent[0], bias))
                ticks = None
                if view.ticks:  # each item judged on its own: the grid's latent plus item noise
                    n_items = len(view.grids[0])
                    ticks = [
                        bool(x)
                        for x in (
                            rng.random(n_items) < 0.5
                            if careless
                            else ticks_from_latent(latent[0], rng.normal(0, model.noise_sd, n_items))
                        )
                    ]
                stored += service.submit_rating(make_session, token, t.id, rating, ticks)
            elif t.protocol == "pairwise":
                if careless:
                    choice = str(rng.choice(["left", "right", "tie"]))
                else:
                    choice = str(pairwise_from_latent(latent[0] - latent[1], model.tie_margin))
                stored += service.submit_pairwise(make_session, token, t.id, choice)
            else:
                if careless:
                    best, worst = (int(x) for x in rng.choice(len(latent), size=2, replace=False))
                else:
                    best, worst = (int(x) for x in best_worst_from_latent(latent))
                stored += service.submit_ranking(make_session, token, t.id, best, worst)
            state = _state(make_session, token)
        if state.stage == "questions":
            service.submit_questions(make_session, token, {}, None)
    return Simulation(stored, tuple(started), frozenset(inattentive))


# --- the same response model, written straight into a tidy judgements table ---------------------


@dataclass(frozen=True)
class Design:
    """What simulated participants can be shown, without a database.

    ``grids``: one row per grid x producing condition, columns ``grid``, ``reference``,
    ``method``, ``segmenter``, ``condition`` (as :func:`survey.export.tables` ``grids``).
    ``catch_grids``: the attention-check grid of each reference that has one. Participants are
    planned as the service plans them (:func:`survey.assignment.plan_trials`): a block per
    protocol of ``protocols`` (in order) with the ``trials_per_participant`` least judged units
    (random tie-break) and ``attention_check_rate`` catch units.
    """

    grids: pd.DataFrame
    trials_per_participant: int
    protocols: tuple[str, ...] = PROTOCOLS
    attention_check_rate: float = 0.0
    catch_grids: Mapping[str, str] = field(default_factory=dict)

    @property
    def conditions(self) -> list[str]:
        return sorted(self.grids["condition"].unique())

    @cached_property
    def pool(self) -> assignment.UnitPool:
        """The units of each protocol (computed once per design)."""
        by_ref = self.grids.drop_duplicates("grid").groupby("reference")["grid"].agg(list)
        return assignment.unit_pool(by_ref.to_dict(), self.catch_grids, self.protocols)


def study_design(make_session: sessionmaker[Session], study_id: int) -> Design:
    """The design of a built study: its grids, catch grids and assignment settings."""
    from ..export import tables

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
    )


def plan_participants(design: Design, participants: int, rng: np.random.Generator) -> list[list[assignment.Unit]]:
    """The trials of ``participants`` participants, planned one after the other with
    :func:`survey.assignment.plan_trials`, the counts kept in memory as the service's database
    keeps them. For the design of a built study (:func:`study_design`) and a generator in the same
    state, these are the trials :func:`survey.service.start_participant` plans (catch units
    included), participant by participant."""
    counts: dict[str, int] = {}
    plans = []
    for _ in range(participants):
        plan = assignment.plan_trials(
            design.pool,
            counts,
            protocols=design.protocols,
            trials_per_participant=design.trials_per_participant,
            attention_check_rate=design.attention_check_rate,
            rng=rng,
        )
        assignment.count_plan(counts, plan)
        plans.append(plan)
    return plans


def simulate_judgements(
    design: Design,
    participants: int,
    *,
    protocol: str = "rating",
    model: ResponseModel = ResponseModel(),
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Simulated answers of one protocol as the tidy judgements table of :func:`survey.export.tables`
    (columns filled: response_id, participant, protocol, trial_position, is_catch, reference, grid,
    grid_position, method, segmenter, condition, rating, outcome).

    Same response model as :func:`simulate` (the same latent-to-answer functions) and the same
    assignment (:func:`plan_participants`, all of the design's protocols planned, then the
    answers of ``protocol`` generated), but no database and no attention checks: catch trials are
    planned (they take their draws and positions) but not answered, and careless raters
    (``model.inattentive``) stay in the data. ``trial_position`` is the position in the
    participant's whole plan, as in the service.
    """
    if protocol not in ("rating", "pairwise", "ranking"):
        raise SimulationError(f"protocol must be rating, pairwise or ranking, got {protocol!r}")
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
        for p, plan in enumerate(plan_participants(design, participants, rng))
        for pos, u in enumerate(plan)
        if u.protocol == protocol and not u.is_catch
    ]
    n_trials = len(trials)
    width = max(len(gids) for _, _, gids in trials)
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
    rating = outcome = None
    if protocol == "rating":
        rating = np.where(lazy, rng.integers(1, 8, n_trials), rating_from_latent(latent[:, 0], bias[trial_participant]))
    elif protocol == "pairwise":
        choice = np.where(
            lazy,
            rng.choice(["left", "right", "tie"], n_trials),
            pairwise_from_latent(latent[:, 0] - latent[:, 1], model.tie_margin),
        )
        outcome = np.column_stack(
            [
                np.select([choice == "left", choice == "right"], ["win", "loss"], "tie"),
                np.select([choice == "left", choice == "right"], ["loss", "win"], "tie"),
            ]
        )
    else:
        best, worst = best_worst_from_latent(latent)
        n_valid = valid.sum(axis=1)
        rb = (rng.random(n_trials) * n_valid).astype(int)
        rw = (rb + 1 + (rng.random(n_trials) * (n_valid - 1)).astype(int)) % n_valid  # a different position
        best, worst = np.where(lazy, rb, best), np.where(lazy, rw, worst)
        pos = np.arange(width)[None, :]
        outcome = np.where(pos == best[:, None], "best", np.where(pos == worst[:, None], "worst", "middle"))
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
    from ..export import DICTIONARY

    return out[list(DICTIONARY["judgements"])].sort_values(
        ["response_id", "grid_position", "condition"], ignore_index=True
    )
