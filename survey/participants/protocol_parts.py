"""Each protocol's trial rules: the units it plans, how an attention check of it is built and
judged, and which answers it stores. The participant layer's part of :mod:`survey.protocols`.

Units
-----
A unit is what one trial shows (:mod:`survey.participants.assignment` plans them): one grid
(rating); two distinct grids of one reference (pairwise); all distinct grids of one reference, at
least two and at most :data:`~survey.protocols.MAX_RANKING_GRIDS` (ranking). A unit's key names it
across participants (the database stores it as ``Trial.unit``).

Attention checks
----------------
A catch trial shows the study's catch grid for the reference: products of another category. Every
other grid on a check screen comes from the reference's own category (retrieval searches within
it; :func:`survey.participants.assignment.catch_units` places the catch grid beside real grids of the same
reference). A check should fail only on an answer that no attentive person gives, so that
excluding on it removes careless responders and not attentive people who judged what they saw:

* calling the unrelated set similar, or
* judging it *more* similar than a set of the product's own category.

An answer that places the unrelated set *level* with a real set does not fail. Participants judge
how products look (shape, colour, pattern, style), and a real set can look as unlike the product as
the unrelated one (for a red striped mug: plain white mugs beside red striped scarves). Failing
those answers would exclude attentive people for the quality of the grids they happened to be
shown, which ties the exclusions to the conditions being compared. Per protocol:

* rating: a rating above :data:`CATCH_RATING_MAX` (4 "somewhat similar" or more) fails;
* pairwise: choosing the unrelated set fails; "equally similar" does not (both sets judged equally
  unlike the product);
* ranking (best-worst): choosing the unrelated set as the most similar fails; not choosing it as
  the least similar does not (best-worst has no "equally": with a real set as unlike the product
  as the unrelated one, either may be picked as least similar);
* swipe: a round's judged set may carry one product of another category (the first product of
  the catch grid of the chosen reference) at a random place; liking it as a recommendation for
  the product chosen fails. The participant is asked whether they like each product *as a
  recommendation for the product they chose*; a mug recommended for a shirt is not one, however
  nice the mug. A uniformly random swiper fails each such check with probability 1/2.

The rule stays strict enough to catch random responders: a uniformly random answer fails a rating
check with probability 4/7, a pairwise check 1/3 and a ranking check of k sets 1/k; with one check
per protocol (the test study: ranking checks of 4 or 5 sets) 77 to 79 % of random responders fail
at least one. ``tests/test_simulate.py`` measures the precision and recall of exclusion on this
rule over simulated participants, attentive and random.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from survey.protocols import MAX_RANKING_GRIDS, Parts

#: A catch grid rated above this ("4 · somewhat similar" or more) fails a rating check.
CATCH_RATING_MAX = 3

#: How callers name a reference: a database row id (service) or a catalog item id (simulator).
Reference = int | str


@dataclass(frozen=True)
class TrialRules:
    """One protocol's rules.

    ``units(reference, grids)``: (key, grid ids) of every unit of one reference, given its grids
    sorted; ``catch_beside``: how many of the reference's grids an attention check shows beside
    the catch grid, and ``catch_needs`` how many it must have for a check; ``failed_check(grids,
    catch, answer)``: whether a stored answer to a check showing ``grids`` (display order) fails
    it; ``answer_columns(answer, grids)``: the ``Response`` columns of a submitted answer, or a
    ``ValueError`` that says what a valid one is."""

    units: Callable[[Reference, Sequence[str]], list[tuple[str, tuple[str, ...]]]]
    catch_beside: int
    catch_needs: int
    failed_check: Callable[[Sequence[str], str, Mapping[str, Any]], bool]
    answer_columns: Callable[[Mapping[str, Any], Sequence[str]], dict[str, Any]]


RULES: Parts[TrialRules] = Parts("participants", "trial rules")


def failed_check(protocol: str, grid_ids: Sequence[str], catch: str, answer: Mapping[str, Any]) -> bool:
    """Whether ``answer`` fails the attention check showing ``grid_ids`` (display order), of which
    ``catch`` is the catch grid. ``answer`` holds the stored columns of the protocol: ``rating``;
    ``choice`` ('left', 'right' or 'tie'); ``best`` and ``worst`` (grid ids)."""
    if catch not in grid_ids:
        raise ValueError(f"catch grid {catch!r} is not among the grids shown {list(grid_ids)}")
    return RULES[protocol].failed_check(grid_ids, catch, answer)


def answer_columns(protocol: str, answer: Mapping[str, Any], grid_ids: Sequence[str]) -> dict[str, Any]:
    """The stored columns of ``answer`` to a ``protocol`` trial showing ``grid_ids``; a
    ``ValueError`` says what a valid answer is."""
    return RULES[protocol].answer_columns(answer, grid_ids)


# --- rating: one grid, rated 1-7 ------------------------------------------------------------


def _rating_columns(answer: Mapping[str, Any], grid_ids: Sequence[str]) -> dict[str, Any]:
    rating, ticks = answer.get("rating"), answer.get("ticks")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 7:
        raise ValueError(f"rating must be an integer from 1 to 7, got {rating!r}")
    if ticks is not None and (not isinstance(ticks, list) or not all(isinstance(x, bool) for x in ticks)):
        raise ValueError("ticks must be a list of true/false, one per grid item")
    return {"rating": rating, "ticks": ticks}


RULES.register(
    "rating",
    TrialRules(
        units=lambda ref, gids: [(f"rating:{g}", (g,)) for g in gids],
        catch_beside=0,
        catch_needs=1,
        failed_check=lambda grids, catch, answer: bool(answer["rating"] > CATCH_RATING_MAX),
        answer_columns=_rating_columns,
    ),
)


# --- pairwise: two grids of one reference, left / right / tie ------------------------------------


def _pairwise_columns(answer: Mapping[str, Any], grid_ids: Sequence[str]) -> dict[str, Any]:
    choice = answer.get("choice")
    if choice not in ("left", "right", "tie"):
        raise ValueError(f"choice must be 'left', 'right' or 'tie', got {choice!r}")
    return {"choice": choice}


RULES.register(
    "pairwise",
    TrialRules(
        units=lambda ref, gids: [(f"pairwise:{a}|{b}", (a, b)) for a, b in itertools.combinations(gids, 2)],
        catch_beside=1,
        catch_needs=1,
        failed_check=lambda grids, catch, answer: bool(answer["choice"] == ("left" if grids[0] == catch else "right")),
        answer_columns=_pairwise_columns,
    ),
)


# --- ranking: all grids of one reference, the most and the least similar (best-worst) ----------


def _ranking_units(ref: Reference, gids: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    return [(f"ranking:{ref}", tuple(gids[:MAX_RANKING_GRIDS]))] if len(gids) >= 2 else []


def _ranking_columns(answer: Mapping[str, Any], grid_ids: Sequence[str]) -> dict[str, Any]:
    """``best`` and ``worst`` are display positions (0-based), stored as the grids shown there."""
    best, worst = answer.get("best"), answer.get("worst")
    for name, pos in (("best", best), ("worst", worst)):
        if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < len(grid_ids):
            raise ValueError(f"{name} must be a set number from 1 to {len(grid_ids)}")
    if best == worst:
        raise ValueError("the most and the least similar set must be different")
    return {"best": grid_ids[best], "worst": grid_ids[worst]}  # type: ignore[index]  # ints, checked above


RULES.register(
    "ranking",
    TrialRules(
        units=_ranking_units,
        catch_beside=MAX_RANKING_GRIDS - 1,
        catch_needs=2,
        failed_check=lambda grids, catch, answer: bool(answer["best"] == catch),
        answer_columns=_ranking_columns,
    ),
)


# --- swipe: a round in one category; its answer is the optional similarity rating of the set ---------


def _swipe_columns(answer: Mapping[str, Any], grid_ids: Sequence[str]) -> dict[str, Any]:
    """The round's own answer, stored when the round ends: the similarity rating of the judged set
    (1-7) when the study asks for one, else none (each product's like is a ``Swipe`` row)."""
    rating = answer.get("rating")
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 7):
        raise ValueError(f"rating must be an integer from 1 to 7 (or none), got {rating!r}")
    return {"rating": rating}


RULES.register(
    "swipe",
    TrialRules(
        units=lambda ref, gids: [],  # rounds come from the arms (Protocol.rounds), never from one reference's grids
        catch_beside=0,
        catch_needs=1,
        failed_check=lambda grids, catch, answer: bool(answer["liked"]),
        answer_columns=_swipe_columns,
    ),
)
