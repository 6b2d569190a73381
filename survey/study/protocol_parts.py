"""How each protocol's stored answers read in the export: the study layer's part of
:mod:`survey.protocols`.

A stored answer (a ``Response`` row) holds the protocol's columns: ``rating`` (and ``ticks``);
``choice`` ('left', 'right' or 'tie'); ``best`` and ``worst`` (grid ids). The export turns it into
an ``outcome`` per grid shown (the judgements table), and into terms that survive a change of
display positions to compare a repeated trial with its first showing (the repeats table).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from survey.protocols import Parts


class StoredAnswer(Protocol):
    """The answer columns of a ``db.models.Response`` row."""

    rating: int | None
    choice: str | None
    best: str | None
    worst: str | None


Term = str | int | None


@dataclass(frozen=True)
class AnswerReading:
    """``outcome(position, grids, choice, best, worst)``: what the answer made of the grid shown at
    ``position`` (None: the protocol has no per-grid outcome); ``in_grid_terms(grids, answer)``:
    the answer independent of display positions; ``agrees(first, repeat)``: whether two such terms
    count as the same answer in a test-retest."""

    outcome: Callable[[int, Sequence[str], str | None, str | None, str | None], str | None]
    in_grid_terms: Callable[[Sequence[str], StoredAnswer], Term]
    agrees: Callable[[Term, Term], bool]


READINGS: Parts[AnswerReading] = Parts("study", "answer reading")


def outcome(
    protocol: str, pos: int, grids: Sequence[str], choice: str | None, best: str | None, worst: str | None
) -> str | None:
    """The outcome of the grid at display position ``pos`` of an answer to a ``protocol`` trial."""
    return READINGS[protocol].outcome(pos, grids, choice, best, worst)


def in_grid_terms(protocol: str, grids: Sequence[str], answer: StoredAnswer) -> Term:
    """An answer in terms that survive new positions: the rating, the grid chosen, best|worst grids."""
    return READINGS[protocol].in_grid_terms(grids, answer)


def agrees(protocol: str, first: Term, repeat: Term) -> bool:
    """Whether a repeated trial's answer agrees with the first (:func:`in_grid_terms` of each)."""
    return READINGS[protocol].agrees(first, repeat)


def _within_one_point(a: Term, b: Term) -> bool:
    """Ratings agree when they differ by at most one scale point."""
    return isinstance(a, int) and isinstance(b, int) and abs(a - b) <= 1


def _pairwise_outcome(pos: int, grids: Sequence[str], choice: str | None, best: str | None, worst: str | None) -> str:
    if choice == "tie":
        return "tie"
    return "win" if (choice == "left") == (pos == 0) else "loss"


def _ranking_outcome(pos: int, grids: Sequence[str], choice: str | None, best: str | None, worst: str | None) -> str:
    return "best" if grids[pos] == best else "worst" if grids[pos] == worst else "middle"


READINGS.register(
    "rating",
    AnswerReading(
        outcome=lambda pos, grids, choice, best, worst: None,
        in_grid_terms=lambda grids, r: r.rating,
        agrees=_within_one_point,
    ),
)
READINGS.register(
    "pairwise",
    AnswerReading(
        outcome=_pairwise_outcome,
        in_grid_terms=lambda grids, r: "tie" if r.choice == "tie" else grids[0 if r.choice == "left" else 1],
        agrees=lambda a, b: a == b,
    ),
)
READINGS.register(
    "ranking",
    AnswerReading(
        outcome=_ranking_outcome,
        in_grid_terms=lambda grids, r: f"{r.best}|{r.worst}",
        agrees=lambda a, b: a == b,
    ),
)
READINGS.register(
    # a swipe round's own answer is the optional similarity rating of its judged set; each product's
    # like is a Swipe row (the export's swipes table); rounds are never repeated
    "swipe",
    AnswerReading(
        outcome=lambda pos, grids, choice, best, worst: None,
        in_grid_terms=lambda grids, r: r.rating,
        agrees=_within_one_point,
    ),
)
