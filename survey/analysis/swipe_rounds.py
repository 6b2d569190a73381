"""Simulated swipe rounds through the participant service (``lookalike simulate`` on a study with
swipe rounds): the analysis part of :mod:`survey.analysis.protocol_parts` for ``swipe``.

One call plays one round, screen by screen, exactly as the survey page would: the products of the
choose phase, the pick (``reference = "pick"``), each product of the judged set, and the set's
rating (``swipe.rate_similarity``). The response model is in
:mod:`survey.analysis.response_model` (``SWIPE_*`` log-odds): a person likes random products of a
category at a base rate, the products recommended for the one they chose more often, by the
effect of the condition that made the set, and another category's product (the check) rarely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Swipe, Trial
from survey.analysis.response_model import (
    SWIPE_BASE_LOGIT,
    SWIPE_CHECK_LOGIT,
    SWIPE_MATCH_LOGIT,
    ResponseModel,
    like_from_logit,
    rating_from_latent,
)
from survey.participants import service

#: Time between two answers of a round, whose screens end at the simulation clock: at most
#: MAX_SCREENS screens (choose, pick, judge, rate) fit the 20 s the simulation gives a trial.
SCREEN_TIME = timedelta(seconds=0.4)
MAX_SCREENS = 45


@dataclass(frozen=True)
class Swiper:
    """One simulated person in one round: ``trial_id`` the round, ``careless`` answers at random,
    ``bias`` their leaning (log-odds), ``effect`` per grid (the conditions' effects), ``now`` the
    clock when the round ends."""

    make_session: sessionmaker[Session]
    token: str
    trial_id: int
    careless: bool
    bias: float
    effect: Mapping[str, float]
    model: ResponseModel
    rng: np.random.Generator
    now: datetime


def play_round(s: Swiper) -> int:
    """Play round ``s.trial_id`` to its end through the service; 1 when its answer was stored."""
    now = s.now - MAX_SCREENS * SCREEN_TIME
    state = service.participant_state(s.make_session, s.token, now=now)
    while state is not None and state.trial is not None and state.trial.trial_id == s.trial_id:
        now += SCREEN_TIME
        screen = state.trial.swipe
        assert screen is not None  # a swipe round always has a screen
        if screen.phase == "pick":
            service.submit_pick(s.make_session, s.token, s.trial_id, 0, now=now)
        elif screen.phase == "rate":
            latent = _set_effect(s) + s.rng.normal(0, s.model.noise_sd)
            rating = int(s.rng.integers(1, 8)) if s.careless else int(rating_from_latent(latent, s.bias))
            return int(service.submit_set_rating(s.make_session, s.token, s.trial_id, rating, now=now))
        else:
            assert screen.swipe_id is not None
            liked = bool(like_from_logit(0.0 if s.careless else _logit(s, screen.phase, screen.position), s.rng))
            service.submit_swipe(s.make_session, s.token, screen.swipe_id, liked, now=now)
        state = service.participant_state(s.make_session, s.token, now=now)
    return 1


def _logit(s: Swiper, phase: str, position: int | None) -> float:
    """The log-odds of a like of the product shown now (attentive)."""
    if phase == "choose":
        return SWIPE_BASE_LOGIT + s.bias
    if _is_check(s, position):
        return SWIPE_CHECK_LOGIT
    return SWIPE_BASE_LOGIT + SWIPE_MATCH_LOGIT + _set_effect(s) + s.bias + float(s.rng.normal(0, s.model.noise_sd))


def _round(s: Swiper) -> Trial | None:
    with s.make_session() as session:
        return session.scalar(select(Trial).where(Trial.id == s.trial_id))


def _set_effect(s: Swiper) -> float:
    """The effect of the conditions that made the round's set (its grid, once chosen)."""
    t = _round(s)
    return float(s.effect.get(t.grid_ids[0], 0.0)) if t is not None and t.grid_ids else 0.0


def _is_check(s: Swiper, position: int | None) -> bool:
    """Whether the judged product at ``position`` is the round's check (another category's)."""
    with s.make_session() as session:
        return bool(
            session.scalar(
                select(Swipe.is_check).where(
                    Swipe.trial_id == s.trial_id, Swipe.phase == "judge", Swipe.position == position
                )
            )
        )
