"""Assignment: which units a participant judges, in which order, with the grids in which positions.

One algorithm for two callers: the participant service (:func:`survey.service.start_participant`
reads the grids and the counts from the database, inside its study-row lock) and the simulator
(:func:`survey.analysis.simulate.simulate_judgements`, counts kept in memory between
participants). Everything here is a pure function of plain data and an explicit
``np.random.Generator``; given the same data and a generator in the same state, both callers plan
the same trials, which is what keeps ``lookalike power`` honest (``tests/test_assignment.py``).

A *unit* is what one trial shows, per protocol:

* rating: one grid;
* pairwise: two distinct grids of one reference;
* ranking: all distinct grids of one reference (at least two, at most ``MAX_RANKING_GRIDS``).

Units are listed in one canonical order: references by their smallest grid id, grids sorted
within a reference. The order depends on the grid ids only, never on how a caller names its
references (database row ids in the service, catalog item ids in the simulator), so both callers
see the same list.

Per participant, :func:`plan_trials` makes its draws in this order, block by block (protocols in
config order):

1. ``rng.permutation(len(units))``: the tie-break among equally judged units (:func:`least_judged`);
2. only with attention checks: ``rng.permutation(len(candidates))`` picks the catch units
   (:func:`pick_catch`);
3. ``rng.permutation(len(block))``: the order of the block's trials;
4. per trial, in that order, ``rng.permutation(len(unit.grid_ids))``: the display positions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .config import MAX_RANKING_GRIDS, PROTOCOLS

#: How callers name a reference: a database row id (service) or a catalog item id (simulator).
Reference = int | str
R = TypeVar("R", int, str)

CATCH_PREFIX = "catch:"


@dataclass(frozen=True)
class Unit:
    """What one trial shows. ``key`` identifies the unit across participants (the database stores
    it as ``Trial.unit``; counts are kept per key); ``grid_ids`` are in display order once planned."""

    key: str
    protocol: str
    reference: Reference
    grid_ids: tuple[str, ...]

    @property
    def is_catch(self) -> bool:
        return self.key.startswith(CATCH_PREFIX)


@dataclass(frozen=True)
class UnitPool:
    """Everything a study can assign, per protocol: its units and its catch candidates (both in
    canonical order). Build it with :func:`unit_pool`."""

    units: Mapping[str, tuple[Unit, ...]]
    catch: Mapping[str, tuple[Unit, ...]]


def _canonical(grids_by_reference: Mapping[R, Iterable[str]]) -> list[tuple[R, list[str]]]:
    """(reference, sorted grid ids), references ordered by their smallest grid id."""
    refs = [(ref, sorted(gids)) for ref, gids in grids_by_reference.items()]
    empty = [ref for ref, gids in refs if not gids]
    if empty:
        raise ValueError(f"references {empty} have no grids; give only references with at least one grid")
    return sorted(refs, key=lambda r: r[1][0])


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def study_units(grids_by_reference: Mapping[R, Iterable[str]], protocol: str) -> list[Unit]:
    """Every unit of ``protocol``, in canonical order: grids (rating), pairs of distinct grids of one
    reference (pairwise), or the distinct grids of one reference with at least two (ranking)."""
    _check_protocol(protocol)
    units: list[Unit] = []
    for ref, gids in _canonical(grids_by_reference):
        if protocol == "rating":
            units += [Unit(f"rating:{g}", protocol, ref, (g,)) for g in gids]
        elif protocol == "pairwise":
            units += [Unit(f"pairwise:{a}|{b}", protocol, ref, (a, b)) for a, b in itertools.combinations(gids, 2)]
        elif len(gids) >= 2:
            units.append(Unit(f"ranking:{ref}", protocol, ref, tuple(gids[:MAX_RANKING_GRIDS])))
    return units


def catch_units(
    grids_by_reference: Mapping[R, Iterable[str]], catch_by_reference: Mapping[R, str], protocol: str
) -> list[Unit]:
    """Every possible attention check of ``protocol``, one per reference that has a catch grid
    (another category's products) and a real unit: the catch grid alone (rating: the right
    answer is a low rating), beside the reference's first grid (pairwise: the real grid wins), or
    among the reference's ranking grids (ranking: the catch grid is the worst)."""
    _check_protocol(protocol)
    out: list[Unit] = []
    for ref, gids in _canonical(grids_by_reference):
        if ref not in catch_by_reference or (protocol == "ranking" and len(gids) < 2):
            continue
        catch = catch_by_reference[ref]
        beside = {"rating": 0, "pairwise": 1, "ranking": MAX_RANKING_GRIDS - 1}[protocol]  # real grids shown too
        # not (*gids[:beside], catch): mypy cannot type that inside a function generic in R (a value-restricted TypeVar)
        out.append(Unit(f"{CATCH_PREFIX}{protocol}:{catch}", protocol, ref, tuple(gids[:beside]) + (catch,)))  # noqa: RUF005
    return out


def unit_pool(
    grids_by_reference: Mapping[R, Iterable[str]], catch_by_reference: Mapping[R, str], protocols: Sequence[str]
) -> UnitPool:
    """The units and catch candidates of each protocol in ``protocols``.

    ``grids_by_reference``: the condition grids of each reference; ``catch_by_reference``: the
    catch grid of each reference that has one (empty: no attention checks possible)."""
    grids = {ref: list(gids) for ref, gids in grids_by_reference.items()}
    return UnitPool(
        {p: tuple(study_units(grids, p)) for p in protocols},
        {p: tuple(catch_units(grids, catch_by_reference, p)) for p in protocols},
    )


def least_judged(units: Sequence[Unit], counts: Mapping[str, int], n: int, rng: np.random.Generator) -> list[Unit]:
    """The ``n`` units judged least often so far (``counts`` per unit key, missing: 0), ties broken
    at random; all units when there are fewer than ``n``. Draws ``rng.permutation(len(units))``."""
    if n < 0:
        raise ValueError(f"n must be at least 0, got {n}")
    tiebreak = rng.permutation(len(units))
    judged = np.array([counts.get(u.key, 0) for u in units], dtype=np.int64)
    order = np.lexsort((tiebreak, judged))[:n]  # by count, then by the tie-break (distinct: a strict order)
    return [units[i] for i in order.tolist()]


def pick_catch(candidates: Sequence[Unit], n: int, rng: np.random.Generator) -> list[Unit]:
    """``n`` catch units of distinct references, drawn at random (all candidates when fewer).
    Draws ``rng.permutation(len(candidates))``, and nothing when ``n`` is 0."""
    if n < 0:
        raise ValueError(f"n must be at least 0, got {n}")
    if n == 0:
        return []
    return [candidates[i] for i in rng.permutation(len(candidates))[:n]]


def catch_count(attention_check_rate: float, real_trials: int) -> int:
    """Attention checks added to a block of ``real_trials``: the rate times the block, rounded up."""
    return math.ceil(attention_check_rate * real_trials) if attention_check_rate else 0


def plan_trials(
    pool: UnitPool,
    counts: Mapping[str, int],
    *,
    protocols: Sequence[str],
    trials_per_participant: int,
    attention_check_rate: float,
    rng: np.random.Generator,
) -> list[Unit]:
    """One participant's trials: a block per protocol (in the order of ``protocols``) of the
    ``trials_per_participant`` least judged units plus its attention checks, the block in random
    order, each trial's grids in random display positions. ``counts``: the trials assigned so far
    per unit key (attention checks not counted); the caller adds this plan's real units to it.
    The draws are made in the order given in the module docstring."""
    if trials_per_participant < 1:
        raise ValueError(f"trials_per_participant must be at least 1, got {trials_per_participant}")
    missing = [p for p in protocols if p not in pool.units]
    if missing:
        raise ValueError(
            f"the unit pool has no protocol {missing}; build it with unit_pool(..., protocols) "
            f"naming every protocol planned"
        )
    plan: list[Unit] = []
    for protocol in protocols:
        chosen = least_judged(pool.units[protocol], counts, trials_per_participant, rng)
        block = chosen + pick_catch(pool.catch[protocol], catch_count(attention_check_rate, len(chosen)), rng)
        for i in rng.permutation(len(block)).tolist():
            u = block[i]
            if len(u.grid_ids) == 1:  # one grid, one position (a permutation of one element draws nothing)
                plan.append(u)
                continue
            shown = tuple(map(u.grid_ids.__getitem__, rng.permutation(len(u.grid_ids)).tolist()))
            plan.append(Unit(u.key, u.protocol, u.reference, shown))
    return plan


def count_plan(counts: dict[str, int], plan: Iterable[Unit]) -> None:
    """Add a plan's real units to ``counts`` (what the database does by storing the trials)."""
    for u in plan:
        if not u.is_catch:
            counts[u.key] = counts.get(u.key, 0) + 1
