"""Assignment: which units a participant judges, in which order, with the grids in which positions.

One algorithm for two callers: the participant service (:func:`survey.participants.service.start_participant`
reads the grids and the counts from the database, inside its study-row lock) and the simulator
(:func:`survey.analysis.simulate.simulate_judgements`, counts kept in memory between
participants). Everything here is a pure function of plain data and an explicit
``np.random.Generator``; given the same data and a generator in the same state, both callers plan
the same trials, which is what keeps ``lookalike power`` honest (``tests/test_assignment.py``).

A *unit* is what one trial shows, per protocol:

* rating: one grid;
* pairwise: two distinct grids of one reference;
* ranking: all distinct grids of one reference (at least two, at most ``MAX_RANKING_GRIDS``);
* swipe: a round in one category with one condition (an *arm*): its reference is chosen by the
  participant during the round, so the unit names the category and the condition, not grids

(the rules of each: :mod:`survey.participants.protocol_parts`).

Units are listed in one canonical order: references by their smallest grid id, grids sorted
within a reference. The order depends on the grid ids only, never on how a caller names its
references (database row ids in the service, catalog item ids in the simulator), so both callers
see the same list.

Per participant, :func:`plan_trials` makes its draws in this order, block by block (protocols in
config order):

1. ``rng.permutation(len(units))``: the tie-break among equally judged units (:func:`least_judged`);
2. only with attention checks: ``rng.permutation(len(candidates))`` picks the catch units
   (:func:`pick_catch`);
3. ``rng.permutation(len(block))``: the order of the block's trials (real units less judged
   come first, see :func:`plan_trials`);
4. per attention check with several grids, in trial order, ``rng.permutation(len(unit.grid_ids))``:
   its display positions. Real units draw nothing here: their positions are counterbalanced
   across participants (:func:`counterbalanced`).

A swipe block draws the same steps 1 and 3 (the tie-break picks at most one arm per category:
one round per category), no catch units and no repeats; instead, only with attention checks,
``rng.permutation(len(block))`` after step 3 picks the rounds whose judged set carries a check
product (:attr:`Unit.with_check`).

Balance, as far as the design allows:

* across participants, each unit is given to the participants who need it least judged so far
  (the caller's counts: answered units plus units held by active participants);
* within a block, among units judged equally often, those whose conditions the block holds least
  come first, so a participant's conditions are spread as evenly as the units allow;
* a unit's grids are shown in positions that rotate with the number of times it was given before
  (pairwise: left/right swapped every other time; ranking: the sets rotate), so every grid takes
  every position equally often, within one, whatever the order participants arrive in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from survey.participants.protocol_parts import RULES, Reference
from survey.protocols import arm_key, get_protocol

R = TypeVar("R", int, str)

CATCH_PREFIX = "catch:"
REPEAT_PREFIX = "repeat:"


@dataclass(frozen=True)
class Unit:
    """What one trial shows. ``key`` identifies the unit across participants (the database stores
    it as ``Trial.unit``; counts are kept per key); ``grid_ids`` are in display order once planned."""

    key: str
    protocol: str
    reference: Reference  # swipe: the round's category
    grid_ids: tuple[str, ...]
    conditions: tuple[str, ...] = ()  # the conditions that produced its grids (for spreading them)
    with_check: bool = False  # swipe: the round's judged set carries an attention-check product

    @property
    def is_catch(self) -> bool:
        return self.key.startswith(CATCH_PREFIX)

    @property
    def is_repeat(self) -> bool:
        """A unit shown a second time to the same participant (test-retest); never counted."""
        return self.key.startswith(REPEAT_PREFIX)

    @property
    def original(self) -> str:
        """The key of the unit this one repeats (its own key if it is no repeat)."""
        return self.key.removeprefix(REPEAT_PREFIX)


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


def study_units(
    grids_by_reference: Mapping[R, Iterable[str]],
    protocol: str,
    conditions: Mapping[str, Iterable[str]] | None = None,
) -> list[Unit]:
    """Every unit of ``protocol``, in canonical order: grids (rating), pairs of distinct grids of one
    reference (pairwise), or the distinct grids of one reference with at least two (ranking).
    ``conditions``: the conditions that produced each grid (optional; used to spread them)."""
    rules = RULES[protocol]
    made_by = conditions or {}
    return [
        Unit(key, protocol, ref, shown, tuple(sorted(c for g in shown for c in made_by.get(g, ()))))
        for ref, gids in _canonical(grids_by_reference)
        for key, shown in rules.units(ref, gids)
    ]


def swipe_units(arms: Mapping[str, Iterable[str]]) -> list[Unit]:
    """Every swipe arm, in canonical order (categories, then condition labels, sorted): one unit
    per category and condition, ``swipe:<category>:<condition>``, whose reference is the category.
    ``arms``: the conditions that have a grid for every pool product of each category."""
    return [
        Unit(arm_key(category, label), "swipe", category, (), (label,))
        for category in sorted(arms)
        for label in sorted(arms[category])
    ]


def catch_units(
    grids_by_reference: Mapping[R, Iterable[str]], catch_by_reference: Mapping[R, str], protocol: str
) -> list[Unit]:
    """Every possible attention check of ``protocol``, one per reference that has a catch grid
    (another category's products) and a real unit: the catch grid alone (rating: the right
    answer is a low rating), beside the reference's first grid (pairwise: the real grid wins), or
    among the reference's ranking grids (ranking: the catch grid is the worst)."""
    rules = RULES[protocol]
    out: list[Unit] = []
    for ref, gids in _canonical(grids_by_reference):
        if ref not in catch_by_reference or len(gids) < rules.catch_needs:
            continue
        catch = catch_by_reference[ref]
        beside = rules.catch_beside  # real grids shown too
        # not (*gids[:beside], catch): mypy cannot type that inside a function generic in R (a value-restricted TypeVar)
        out.append(Unit(f"{CATCH_PREFIX}{protocol}:{catch}", protocol, ref, tuple(gids[:beside]) + (catch,)))  # noqa: RUF005
    return out


def unit_pool(
    grids_by_reference: Mapping[R, Iterable[str]],
    catch_by_reference: Mapping[R, str],
    protocols: Sequence[str],
    conditions: Mapping[str, Iterable[str]] | None = None,
    arms: Mapping[str, Iterable[str]] | None = None,
) -> UnitPool:
    """The units and catch candidates of each protocol in ``protocols``.

    ``grids_by_reference``: the condition grids of each reference; ``catch_by_reference``: the
    catch grid of each reference that has one (empty: no attention checks possible);
    ``conditions``: the condition labels that produced each grid (spread within a block);
    ``arms``: per category, the conditions a swipe round can judge (:func:`swipe_units`)."""
    grids = {ref: list(gids) for ref, gids in grids_by_reference.items()}
    units: dict[str, tuple[Unit, ...]] = {}
    catch: dict[str, tuple[Unit, ...]] = {}
    for p in protocols:
        if get_protocol(p).rounds:  # rounds: arms, with any attention check inside a round
            units[p], catch[p] = tuple(swipe_units(arms or {})), ()
        else:
            units[p], catch[p] = (
                tuple(study_units(grids, p, conditions)),
                tuple(catch_units(grids, catch_by_reference, p)),
            )
    return UnitPool(units, catch)


def least_judged(
    units: Sequence[Unit],
    counts: Mapping[str, int],
    n: int,
    rng: np.random.Generator,
    *,
    one_per_reference: bool = False,
) -> list[Unit]:
    """The ``n`` units judged least often so far (``counts`` per unit key, missing: 0); all units
    when there are fewer than ``n``. Among equally judged units, the one whose conditions
    (:attr:`Unit.conditions`) the units picked so far hold least comes first, then a random
    tie-break. With ``one_per_reference``, at most one unit per reference (swipe: one round per
    category). Draws ``rng.permutation(len(units))``."""
    if n < 0:
        raise ValueError(f"n must be at least 0, got {n}")
    tiebreak = rng.permutation(len(units))
    judged = np.array([counts.get(u.key, 0) for u in units], dtype=np.int64)
    order = np.lexsort((tiebreak, judged)).tolist()  # by count, then by the tie-break (distinct: a strict order)
    if not one_per_reference and not any(u.conditions for u in units):
        return [units[i] for i in order[:n]]
    picked: list[int] = []
    held: dict[str, int] = {}  # condition -> times in the units picked so far
    start = 0
    while len(picked) < n and start < len(order):
        end = start
        while end < len(order) and judged[order[end]] == judged[order[start]]:
            end += 1
        rest = order[start:end]  # equally judged, in tie-break order
        while rest and len(picked) < n:  # greedy: least-held conditions first (stable: tie-break order)
            if one_per_reference:
                taken = {units[i].reference for i in picked}
                rest = [i for i in rest if units[i].reference not in taken]
                if not rest:
                    break
            best = min(range(len(rest)), key=lambda j: sum(held.get(c, 0) for c in units[rest[j]].conditions))
            i = rest.pop(best)
            picked.append(i)
            for c in units[i].conditions:
                held[c] = held.get(c, 0) + 1
        start = end
    return [units[i] for i in picked]


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


def counterbalanced(unit: Unit, times_given: int) -> tuple[str, ...]:
    """The display order of a real unit's grids for the participant who gets it after it was given
    ``times_given`` times: the canonical order rotated by ``times_given`` (pairwise: swapped every
    other time), so over any run of participants every grid takes every position equally often
    (within one)."""
    k = len(unit.grid_ids)
    shift = times_given % k if k else 0
    return unit.grid_ids[shift:] + unit.grid_ids[:shift]


def plan_trials(
    pool: UnitPool,
    counts: Mapping[str, int],
    *,
    protocols: Sequence[str],
    trials_per_participant: int,
    attention_check_rate: float,
    rng: np.random.Generator,
    repeat_rate: float = 0.0,
    choose: Mapping[str, Callable[[Sequence[Unit], int], list[Unit]]] | None = None,
) -> list[Unit]:
    """One participant's trials: a block per protocol (in the order of ``protocols``) of the
    ``trials_per_participant`` least judged units plus its attention checks. ``choose``: per protocol,
    a function ``(units, n)`` that picks its block's real units instead of :func:`least_judged` (adaptive
    pairs, :mod:`survey.participants.adaptive`) with a generator of its own: such a block skips draw 1
    of the module docstring; the rest is unchanged. The block is in
    random order, except that a real unit judged less comes before one judged more (a participant
    who stops early has then answered the units that needed it most, which keeps answered counts
    within one of each other under dropout); attention checks keep random places. Real units'
    grids are in counterbalanced positions (:func:`counterbalanced`), attention checks' at random.
    ``counts``: per unit key, the trials that count so far (answered or held; attention checks not
    counted); the caller adds this plan's real units to it. The draws are made in the order given
    in the module docstring. With ``repeat_rate``, ``ceil(rate x real units)`` of the block's real
    units, drawn with ``rng.permutation`` after the block's other draws, are shown again at the
    end of the block (key ``repeat:<unit>``), their grids rotated by one position (a rating grid
    has one position), in the order drawn."""
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
        if get_protocol(protocol).rounds:
            plan.extend(_round_block(pool.units[protocol], counts, trials_per_participant, attention_check_rate, rng))
            continue
        if choose and protocol in choose:
            chosen = choose[protocol](pool.units[protocol], trials_per_participant)
        else:
            chosen = least_judged(pool.units[protocol], counts, trials_per_participant, rng)
        block = chosen + pick_catch(pool.catch[protocol], catch_count(attention_check_rate, len(chosen)), rng)
        plan.extend(_ordered_block(block, len(chosen), counts, rng))
        if repeat_rate:
            real_shown = [u for u in plan[-len(block) :] if not u.is_catch]
            for i in rng.permutation(len(real_shown))[: math.ceil(repeat_rate * len(real_shown))].tolist():
                u = real_shown[i]
                again = u.grid_ids[1:] + u.grid_ids[:1]  # every grid moves: new positions
                plan.append(Unit(REPEAT_PREFIX + u.key, u.protocol, u.reference, again, u.conditions))
    return plan


def _ordered_block(block: Sequence[Unit], real: int, counts: Mapping[str, int], rng: np.random.Generator) -> list[Unit]:
    """A block's ``real`` units (first in ``block``) and its attention checks in random order (draws 3
    and 4 of the module docstring), except that a real unit judged less comes before one judged more;
    real units' grids counterbalanced, attention checks' at random."""
    order = rng.permutation(len(block)).tolist()
    # the real units' slots of the random order, refilled with the real units by (count, that order)
    fill = iter(sorted((i for i in order if i < real), key=lambda i: counts.get(block[i].key, 0)))
    out = []
    for i in order:
        u = block[next(fill)] if i < real else block[i]
        if not u.is_catch:
            out.append(Unit(u.key, u.protocol, u.reference, counterbalanced(u, counts.get(u.key, 0)), u.conditions))
        elif len(u.grid_ids) == 1:  # one grid, one position (a permutation of one element draws nothing)
            out.append(u)
        else:
            shown = tuple(map(u.grid_ids.__getitem__, rng.permutation(len(u.grid_ids)).tolist()))
            out.append(Unit(u.key, u.protocol, u.reference, shown, u.conditions))
    return out


def _round_block(
    arms: Sequence[Unit], counts: Mapping[str, int], rounds: int, attention_check_rate: float, rng: np.random.Generator
) -> list[Unit]:
    """A swipe block: ``rounds`` arms of distinct categories (at most one round per category), the
    least judged first and their conditions spread (:func:`least_judged`), in random order except
    that a less judged arm comes first; ``catch_count`` of them, drawn at random, with a check
    product in their judged set. Real rounds only: no catch units, no repeats."""
    chosen = least_judged(arms, counts, rounds, rng, one_per_reference=True)
    order = sorted(rng.permutation(len(chosen)).tolist(), key=lambda i: counts.get(chosen[i].key, 0))
    checked = set(rng.permutation(len(chosen))[: catch_count(attention_check_rate, len(chosen))].tolist())
    return [
        Unit(chosen[i].key, chosen[i].protocol, chosen[i].reference, (), chosen[i].conditions, with_check=k in checked)
        for k, i in enumerate(order)
    ]


def count_plan(counts: dict[str, int], plan: Iterable[Unit]) -> None:
    """Add a plan's real units to ``counts`` (what the database does by storing the trials)."""
    for u in plan:
        if not (u.is_catch or u.is_repeat):
            counts[u.key] = counts.get(u.key, 0) + 1
