"""The response model of simulated participants: a latent similarity per grid, mapped to an
answer by small vectorised functions. Shared by both simulators (:mod:`survey.analysis.simulate`,
whose docstring states the model in full)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from similarity.errors import UserError
from survey.participants.protocol_parts import CATCH_RATING_MAX

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


#: The response model simulations use unless given one: no effects, unit noise.
DEFAULT_MODEL = ResponseModel()


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


# --- swipe rounds: latent -> like ---------------------------------------------------------------

#: Log-odds that a person likes a random product of a category (about 27 %).
SWIPE_BASE_LOGIT = -1.0
#: How much more a product recommended for one the person liked is liked (log-odds), before the
#: condition's effect: a recommendation near one's own choice suits one's taste more than chance.
SWIPE_MATCH_LOGIT = 1.0
#: Log-odds that an attentive person likes another category's product recommended for theirs (2 %).
SWIPE_CHECK_LOGIT = -4.0


def like_from_logit(logit, rng: np.random.Generator) -> np.ndarray:
    """Likes drawn with probability ``1 / (1 + exp(-logit))`` (one uniform draw per value)."""
    logit = np.asarray(logit, dtype=float)
    return rng.random(logit.shape) < 1.0 / (1.0 + np.exp(-logit))
