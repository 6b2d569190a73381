"""The protocols a study can use, defined once: what each trial asks, and each layer's part of it.

A protocol is one way to ask people about recommendation grids (rating one grid, choosing
between two, naming the best and the worst of several, or a shopper's swipe round: choosing a
product they like, then liking or not the products recommended for it). Its design facts live here, at the
bottom of the survey layers, in :data:`PROTOCOLS`; every list of protocol names (the study
config, the command line, the analysis loops) is derived from it.

Each layer adds its part under the same names, in a module called ``protocol_parts`` in each layer:

=============  =========================================  ================================================
layer          module                                     its part of a protocol
=============  =========================================  ================================================
study          :mod:`survey.study.protocol_parts`         how a stored answer reads in the export
participants   :mod:`survey.participants.protocol_parts`  units, attention check, answer validation
web            :mod:`survey.web.views.protocol_parts`     the trial page and its submit callback
analysis       :mod:`survey.analysis.protocol_parts`      agreement, retest kappa, simulated answers
=============  =========================================  ================================================

What participants read (instructions, questions, error messages) is in the text catalog,
:mod:`survey.study.texts`, beside every other participant text in every language.

A layer keeps its parts in a :class:`Parts` table, which refuses names that are not protocols
and parts registered twice; ``tests/test_protocols.py`` fails when a protocol lacks a part in
any layer. To add a protocol: one entry here, then one part in each of those modules (the
README's "Add a protocol").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from similarity.errors import UserError

#: Most grids a ranking trial shows (all distinct grids of a reference, two sets per row).
MAX_RANKING_GRIDS = 6
#: The swipe protocol's keys in the study TOML's ``[swipe]`` table (each sets ``swipe_<key>``).
SWIPE_OPTIONS = ("pool_per_category", "max_swipes", "reference", "pick_after", "rate_similarity")


@dataclass(frozen=True)
class Protocol:
    """A protocol's design facts (what every layer may rely on).

    ``min_conditions``/``max_conditions``: how many conditions (methods x segmenters) a study
    using it needs / may have; ``options``: its own keys in the study TOML, in the table
    ``table`` (``[protocols]``, beside ``use`` and ``trials_per_participant`` which every protocol
    shares, or a table of its own)."""

    name: str
    asks: str
    min_conditions: int = 1
    max_conditions: int | None = None
    options: tuple[str, ...] = ()
    table: str = "protocols"
    #: a trial is a round of several screens with one answer per product shown (the swipe rounds
    #: of :mod:`survey.participants.swipes`): planned per category and condition, its reference
    #: chosen during the round, its answers exported in tables of their own
    rounds: bool = False


PROTOCOLS: Mapping[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("rating", "one grid, rated for similarity on the study's scale", options=("rating_item_ticks",)),
        Protocol(
            "pairwise",
            "two grids of one reference: which is more similar, or equally",
            min_conditions=2,
            options=("pairwise_assignment", "pairwise_adaptive_floor"),
        ),
        Protocol(
            "ranking",
            f"all distinct grids of one reference (2 to {MAX_RANKING_GRIDS}): the most and the least similar",
            min_conditions=2,
            max_conditions=MAX_RANKING_GRIDS,
        ),
        Protocol(
            "swipe",
            "a shopper's round: like products of a category until one becomes the reference, then like or "
            "not each product of one condition's set for it",
            options=SWIPE_OPTIONS,
            table="swipe",
            rounds=True,
        ),
    )
}

#: The protocol names, in the order the README and the command line list them.
NAMES: tuple[str, ...] = tuple(PROTOCOLS)
#: The protocols whose trials show grids of references the researcher picked (not rounds).
GRID_PROTOCOLS: tuple[str, ...] = tuple(p.name for p in PROTOCOLS.values() if not p.rounds)
#: The protocols whose trials are rounds (:attr:`Protocol.rounds`).
ROUND_PROTOCOLS: tuple[str, ...] = tuple(p.name for p in PROTOCOLS.values() if p.rounds)


def arm_key(category: str, condition: str) -> str:
    """The unit key of a swipe arm: ``swipe:<category>:<method>/<segmenter>``."""
    return f"swipe:{category}:{condition}"


def arm_of(unit: str) -> tuple[str, str]:
    """(category, condition label) of a swipe arm's unit key (labels hold no colon; a category may)."""
    category, _, condition = unit.removeprefix("swipe:").rpartition(":")
    return category, condition


class UnknownProtocol(UserError, ValueError):
    """A protocol name that is not in :data:`PROTOCOLS`; the message lists the valid ones."""


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; :class:`UnknownProtocol` names the valid ones otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UnknownProtocol(f"unknown protocol {name!r}; valid: {', '.join(NAMES)}") from None


T = TypeVar("T")

_TABLES: list[Parts[object]] = []


class Parts(Generic[T]):
    """One layer's part of every protocol, registered by protocol name.

    ``layer`` is the survey layer that owns the table (``study``, ``participants``, ``web``,
    ``analysis``); ``role`` says what a part is, for messages. Create one per layer module and
    register one part per protocol with :meth:`register` (also usable as a decorator)."""

    def __init__(self, layer: str, role: str) -> None:
        self.layer = layer
        self.role = role
        self._parts: dict[str, T] = {}
        _TABLES.append(self)  # type: ignore[arg-type]  # read only through part_tables()

    def register(self, name: str, part: T) -> T:
        """Register ``part`` as protocol ``name``'s; refuses unknown names and second parts."""
        get_protocol(name)
        if name in self._parts:
            raise ValueError(f"protocol {name!r} already has a {self.role} ({self.layer} layer)")
        self._parts[name] = part
        return part

    def __getitem__(self, name: str) -> T:
        get_protocol(name)
        try:
            return self._parts[name]
        except KeyError:
            raise LookupError(
                f"protocol {name!r} has no {self.role} in the {self.layer} layer; register one "
                "(see survey/protocols.py for the module of each layer)"
            ) from None

    def missing(self) -> tuple[str, ...]:
        """The protocols that have no part here (a complete layer has none)."""
        return tuple(name for name in NAMES if name not in self._parts)

    def __repr__(self) -> str:
        return f"Parts({self.layer!r}, {self.role!r}, registered={list(self._parts)})"


def part_tables() -> tuple[Parts[object], ...]:
    """Every :class:`Parts` table created so far (those of the layer modules imported)."""
    return tuple(_TABLES)
