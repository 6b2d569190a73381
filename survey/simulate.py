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
* attention checks: attentive raters answer them correctly (rating 1, the real grid, the
  catch grid as worst); a share ``inattentive`` of participants answers everything at random.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Condition, Grid, GridCondition, Participant, Trial

from . import service


class SimulationError(ValueError):
    pass


@dataclass(frozen=True)
class ResponseModel:
    effects: dict[str, float] = field(default_factory=dict)  # "method/segmenter" -> effect
    noise_sd: float = 1.0
    bias_sd: float = 0.5
    inattentive: float = 0.0
    tie_margin: float = 0.25


def parse_effects(spec: str | None) -> dict[str, float]:
    """``method/segmenter=value,...`` -> dict."""
    out: dict[str, float] = {}
    for part in filter(None, (spec or "").split(",")):
        key, eq, value = part.partition("=")
        if not eq or "/" not in key:
            raise SimulationError(f"effect '{part}' needs the form method/segmenter=value, e.g. efficientnet/u2netp=0.5")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise SimulationError(f"effect '{part}': '{value}' is not a number") from None
    return out


def _grid_effects(make_session: sessionmaker[Session], study_id: int, model: ResponseModel) -> dict[str, float]:
    with make_session() as s:
        rows = s.execute(select(GridCondition.grid_id, Condition.method, Condition.segmenter)
                         .join(Condition, Condition.id == GridCondition.condition_id)
                         .where(Condition.study_id == study_id)).all()
        catch = set(s.scalars(select(Grid.id).where(Grid.study_id == study_id, Grid.kind == "catch")))
    known = {f"{m}/{g}" for _, m, g in rows}
    unknown = set(model.effects) - known
    if unknown:
        raise SimulationError(f"effects name condition(s) {sorted(unknown)} not in the study; valid: {sorted(known)}")
    per_grid: dict[str, list[float]] = {}
    for grid, m, g in rows:
        per_grid.setdefault(grid, []).append(model.effects.get(f"{m}/{g}", 0.0))
    effects = {grid: float(np.mean(v)) for grid, v in per_grid.items()}
    effects.update({grid: -3.0 for grid in catch})  # products of another category: clearly dissimilar
    return effects


def simulate(make_session: sessionmaker[Session], study_id: int, participants: int, *, seed: int = 0,
             model: ResponseModel = ResponseModel()) -> int:
    """Run ``participants`` simulated participants through the study; returns answers stored."""
    if participants < 1:
        raise SimulationError("participants must be at least 1")
    rng = np.random.default_rng(seed)
    effect = _grid_effects(make_session, study_id, model)
    stored = 0
    for _ in range(participants):
        token = service.start_participant(make_session, study_id, {}, rng)
        careless = rng.random() < model.inattentive
        bias = rng.normal(0, model.bias_sd)
        service.finish_instructions(make_session, token)
        with make_session() as s:
            pid = s.scalar(select(Participant.id).where(Participant.token == token))
            trials = {t.id: t for t in s.scalars(select(Trial).where(Trial.participant_id == pid))}
        while (state := service.participant_state(make_session, token)).stage == "trial":
            t = trials[state.trial.trial_id]
            service.mark_shown(make_session, token, t.id)
            latent = [effect[g] + rng.normal(0, model.noise_sd) for g in t.grid_ids]
            if t.protocol == "rating":
                rating = int(rng.integers(1, 8)) if careless else int(np.clip(round(4 + 1.5 * (latent[0] + bias)), 1, 7))
                ticks = None
                if state.trial.ticks:  # each item judged on its own: the grid's latent plus item noise
                    n_items = len(state.trial.grids[0])
                    ticks = [bool(x) for x in (rng.random(n_items) < 0.5 if careless else
                                               latent[0] + rng.normal(0, model.noise_sd, n_items) > 0)]
                stored += service.submit_rating(make_session, token, t.id, rating, ticks)
            elif t.protocol == "pairwise":
                if careless:
                    choice = str(rng.choice(["left", "right", "tie"]))
                else:
                    d = latent[0] - latent[1]
                    choice = "left" if d > model.tie_margin else "right" if d < -model.tie_margin else "tie"
                stored += service.submit_pairwise(make_session, token, t.id, choice)
            else:
                if careless:
                    best, worst = (int(x) for x in rng.choice(len(latent), size=2, replace=False))
                else:
                    best, worst = int(np.argmax(latent)), int(np.argmin(latent))
                stored += service.submit_ranking(make_session, token, t.id, best, worst)
        if state.stage == "questions":
            service.submit_questions(make_session, token, {}, None)
    return stored
