"""survey.participants.assignment: one algorithm for the participant service and the simulator."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sqlalchemy import select

from db.models import CatalogItem, Participant, Trial
from survey.analysis.simulate import ResponseModel, plan_participants, simulate_judgements, study_design
from survey.participants import assignment, service
from survey.protocols import MAX_RANKING_GRIDS

GRIDS = {10: ["c", "a", "b"], 7: ["f", "d", "e", "g"], 3: ["h"]}  # reference -> condition grids
CATCH = {10: "x10", 7: "x7", 3: "x3"}


def _unit(key: str, n_grids: int = 1) -> assignment.Unit:
    return assignment.Unit(key, "rating", 1, tuple(f"{key}-{i}" for i in range(n_grids)))


def test_units_of_each_protocol_in_an_order_that_ignores_how_references_are_named():
    rating = assignment.study_units(GRIDS, "rating")
    assert [u.grid_ids for u in rating] == [("a",), ("b",), ("c",), ("d",), ("e",), ("f",), ("g",), ("h",)]
    assert rating[0].key == "rating:a" and rating[0].reference == 10
    pairwise = assignment.study_units(GRIDS, "pairwise")
    assert [u.grid_ids for u in pairwise] == [
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
        ("d", "e"),
        ("d", "f"),
        ("d", "g"),
        ("e", "f"),
        ("e", "g"),
        ("f", "g"),
    ]  # distinct grids of one reference
    ranking = assignment.study_units(GRIDS, "ranking")
    assert [(u.key, u.grid_ids) for u in ranking] == [
        ("ranking:10", ("a", "b", "c")),
        ("ranking:7", ("d", "e", "f", "g")),
    ]  # one grid: no ranking
    renamed = {f"item-{ref}": gids for ref, gids in GRIDS.items()}
    for protocol in ("rating", "pairwise", "ranking"):
        assert [u.grid_ids for u in assignment.study_units(renamed, protocol)] == [
            u.grid_ids for u in assignment.study_units(GRIDS, protocol)
        ]
    with pytest.raises(ValueError, match="unknown protocol .*; valid: rating, pairwise, ranking"):
        assignment.study_units(GRIDS, "triad")
    with pytest.raises(ValueError, match=r"references \[5\] have no grids"):
        assignment.study_units({5: []}, "rating")


def test_ranking_shows_at_most_max_ranking_grids():
    many = {1: [f"g{i:02d}" for i in range(MAX_RANKING_GRIDS + 3)]}
    (unit,) = assignment.study_units(many, "ranking")
    assert unit.grid_ids == tuple(sorted(many[1])[:MAX_RANKING_GRIDS])
    (check,) = assignment.catch_units(many, {1: "catch"}, "ranking")
    assert len(check.grid_ids) == MAX_RANKING_GRIDS and check.grid_ids[-1] == "catch"


def test_catch_units_hold_the_catch_grid_and_real_grids_of_the_same_reference():
    rating = assignment.catch_units(GRIDS, CATCH, "rating")
    assert [u.grid_ids for u in rating] == [("x10",), ("x7",), ("x3",)] and all(u.is_catch for u in rating)
    assert [u.grid_ids for u in assignment.catch_units(GRIDS, CATCH, "pairwise")] == [
        ("a", "x10"),
        ("d", "x7"),
        ("h", "x3"),
    ]
    ranking = assignment.catch_units(GRIDS, CATCH, "ranking")  # reference 3 has no ranking unit
    assert [u.grid_ids for u in ranking] == [("a", "b", "c", "x10"), ("d", "e", "f", "g", "x7")]
    assert ranking[0].key == "catch:ranking:x10" and assignment.catch_units(GRIDS, {}, "rating") == []


def test_least_judged_first_ties_at_random():
    units = [_unit(k) for k in "abcd"]
    counts = {"a": 2, "c": 1}  # b and d never judged
    picks = Counter()
    for seed in range(400):
        two = assignment.least_judged(units, counts, 2, np.random.default_rng(seed))
        assert {u.key for u in two} == {"b", "d"}
        picks[assignment.least_judged(units, counts, 1, np.random.default_rng(seed))[0].key] += 1
        three = assignment.least_judged(units, counts, 3, np.random.default_rng(seed))
        assert three[2].key == "c"
    assert set(picks) == {"b", "d"} and 150 < picks["b"] < 250, picks  # a fair tie-break: about half each
    assert [u.key for u in assignment.least_judged(units, counts, 9, np.random.default_rng(0))][2:] == ["c", "a"]
    with pytest.raises(ValueError, match="n must be at least 0"):
        assignment.least_judged(units, counts, -1, np.random.default_rng(0))


def test_plans_use_no_unit_twice_keep_blocks_in_protocol_order_and_balance_counts():
    protocols = ("ranking", "rating", "pairwise")
    pool = assignment.unit_pool(GRIDS, CATCH, protocols)
    counts: dict[str, int] = {}
    rng = np.random.default_rng(4)
    for _ in range(30):
        plan = assignment.plan_trials(
            pool, counts, protocols=protocols, trials_per_participant=3, attention_check_rate=0.34, rng=rng
        )
        blocks = [u.protocol for u in plan]
        assert blocks == ["ranking"] * 3 + ["rating"] * 5 + ["pairwise"] * 5  # 2 ranking units + 1 check; 3 + 2
        assert len({u.key for u in plan}) == len(plan)  # no unit twice
        for u in plan:  # display positions: a permutation of the unit's grids
            source = {v.key: v for p in protocols for v in (*pool.units[p], *pool.catch[p])}[u.key]
            assert sorted(u.grid_ids) == sorted(source.grid_ids)
        assignment.count_plan(counts, plan)
    assert not any(k.startswith("catch:") for k in counts)
    for protocol in protocols:
        per_unit = [counts.get(u.key, 0) for u in pool.units[protocol]]
        assert max(per_unit) - min(per_unit) <= 1, (protocol, per_unit)
    with pytest.raises(ValueError, match="no protocol"):
        assignment.plan_trials(
            pool, {}, protocols=("rating", "triad"), trials_per_participant=1, attention_check_rate=0, rng=rng
        )


def test_plan_trials_makes_the_documented_draws():
    pool = assignment.unit_pool(GRIDS, CATCH, ("rating", "ranking"))
    rng, replay = np.random.default_rng(8), np.random.default_rng(8)
    plan = assignment.plan_trials(
        pool, {}, protocols=("rating", "ranking"), trials_per_participant=2, attention_check_rate=0.5, rng=rng
    )
    expected = []
    for protocol in ("rating", "ranking"):
        units = pool.units[protocol]
        tiebreak = replay.permutation(len(units))
        block = [units[i] for i in np.argsort(tiebreak)[:2]]
        block += [pool.catch[protocol][i] for i in replay.permutation(len(pool.catch[protocol]))[:1]]
        for i in replay.permutation(len(block)):  # no counts yet: the random order as drawn
            u = block[i]
            if u.is_catch:  # attention checks: random positions
                expected.append(tuple(u.grid_ids[j] for j in replay.permutation(len(u.grid_ids))))
            else:  # real units: counterbalanced, never given before -> canonical order, no draw
                expected.append(u.grid_ids)
    assert [u.grid_ids for u in plan] == expected
    assert rng.random() == replay.random()  # nothing else drawn


def _service_plans(make_session, study_id: int, n: int, seed: int) -> list[list[tuple]]:
    rng = np.random.default_rng(seed)
    tokens = [service.start_participant(make_session, study_id, {}, rng) for _ in range(n)]
    with make_session() as s:
        item = dict(s.execute(select(CatalogItem.id, CatalogItem.item_id)).all())
        plans = []
        for token in tokens:
            pid = s.scalar(select(Participant.id).where(Participant.token == token))
            trials = s.scalars(select(Trial).where(Trial.participant_id == pid).order_by(Trial.position)).all()
            plans.append([(t.protocol, t.is_catch, item[t.reference_id], tuple(t.grid_ids)) for t in trials])
    return plans


def test_the_simulator_plans_exactly_the_trials_the_service_plans(study_db):
    """Same seed, same database: `lookalike power` simulates the assignment participants get,
    attention checks included (planned in both; the fast simulation does not answer them)."""
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    design = study_design(make_session, study.id)
    assert design.protocols == ("rating", "pairwise", "ranking") and design.attention_check_rate == 0.25
    served = _service_plans(make_session, study.id, 10, seed=11)
    simulated = [
        [(u.protocol, u.is_catch, u.reference, u.grid_ids) for u in plan]
        for plan in plan_participants(design, 10, np.random.default_rng(11))
    ]
    assert simulated == served
    assert all(sum(is_catch for _, is_catch, _, _ in plan) == 3 for plan in served)  # one check per block
    for protocol in ("rating", "pairwise", "ranking"):  # and the judgements table holds those trials
        j = simulate_judgements(design, 10, protocol=protocol, model=ResponseModel(), rng=np.random.default_rng(11))
        got = [
            (p, pos, tuple(g["grid"]))
            for (p, pos), g in j.drop_duplicates(["response_id", "grid"]).groupby(
                ["participant", "trial_position"], sort=True
            )
        ]
        want = [
            (p + 1, pos, grids)
            for p, plan in enumerate(served)
            for pos, (proto, is_catch, _, grids) in enumerate(plan)
            if proto == protocol and not is_catch
        ]
        assert got == want and not j["is_catch"].any()


def test_positions_are_counterbalanced_across_participants():
    protocols = ("pairwise", "ranking")
    pool = assignment.unit_pool(GRIDS, {}, protocols)
    counts: dict[str, int] = {}
    seen: Counter = Counter()  # (unit, grid, position)
    rng = np.random.default_rng(6)
    for _ in range(36):
        plan = assignment.plan_trials(
            pool, counts, protocols=protocols, trials_per_participant=2, attention_check_rate=0, rng=rng
        )
        for u in plan:
            seen.update((u.key, g, pos) for pos, g in enumerate(u.grid_ids))
        assignment.count_plan(counts, plan)
    for protocol in protocols:
        for u in pool.units[protocol]:
            per_position = [seen[(u.key, g, pos)] for g in u.grid_ids for pos in range(len(u.grid_ids))]
            assert max(per_position) - min(per_position) <= 1, (u.key, per_position)  # every grid, every place
    assert assignment.counterbalanced(pool.units["pairwise"][0], 1) == ("b", "a")


def test_conditions_are_spread_within_a_block():
    grids = {1: ["a1", "b1"], 2: ["a2", "b2"], 3: ["a3", "b3"], 4: ["a4", "b4"]}
    made_by = {g: [f"cond-{g[0]}"] for gids in grids.values() for g in gids}  # a*: cond-a, b*: cond-b
    pool = assignment.unit_pool(grids, {}, ("rating",), made_by)
    for seed in range(50):
        block = assignment.least_judged(pool.units["rating"], {}, 4, np.random.default_rng(seed))
        assert Counter(c for u in block for c in u.conditions) == {"cond-a": 2, "cond-b": 2}
    plain = assignment.unit_pool(grids, {}, ("rating",))  # without conditions: drawn at random, often uneven
    uneven = sum(
        Counter(u.key[7] for u in assignment.least_judged(plain.units["rating"], {}, 4, np.random.default_rng(s)))
        != {"a": 2, "b": 2}
        for s in range(50)
    )
    assert uneven > 10


def test_less_judged_units_come_first_in_a_block_so_dropouts_keep_the_balance():
    units = assignment.unit_pool({1: list("abcdef")}, {}, ("rating",))
    counts = {"rating:a": 1, "rating:b": 1, "rating:c": 1, "rating:d": 1}  # e, f behind
    for seed in range(30):
        plan = assignment.plan_trials(
            units,
            counts,
            protocols=("rating",),
            trials_per_participant=4,
            attention_check_rate=0,
            rng=np.random.default_rng(seed),
        )
        assert {u.key for u in plan[:2]} == {"rating:e", "rating:f"}
