"""Repeat trials (repeat_rate) and test-retest consistency (survey/analysis/consistency.py): planned
later with new positions, never counted for balance nor analysed as judgements, their consistency
checked against statsmodels and by hand, with participant-bootstrap intervals and an exclusion rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

from survey.analysis.consistency import participant_spread, per_participant, retest_consistency, weighted_kappa
from survey.analysis.exclusions import ExclusionRules, apply_exclusions
from survey.participants import assignment, planning, service
from survey.study.export import tables

GRIDS = {1: ["a", "b", "c"], 2: ["d", "e", "f"]}


def test_weighted_kappa_matches_statsmodels_and_a_hand_computation():
    rng = np.random.default_rng(0)
    for _ in range(20):
        first = rng.integers(1, 8, 40)
        repeat = np.clip(first + rng.integers(-2, 3, 40), 1, 7)
        table = np.zeros((7, 7))
        np.add.at(table, (first - 1, repeat - 1), 1)
        expected = cohens_kappa(table, wt="quadratic", return_results=False)
        assert weighted_kappa(first, repeat) == pytest.approx(expected, abs=1e-12)
    # by hand: two items, answers (1, 2) and (2, 1) -> O = [[0, .5], [.5, 0]], E = .25 everywhere on {1, 2}
    # sum(w O) = 1, sum(w E) = .5 -> kappa = 1 - 1 / .5 = -1
    assert weighted_kappa([1, 2], [2, 1]) == pytest.approx(-1.0)
    assert weighted_kappa([3, 5, 7], [3, 5, 7]) == 1.0
    assert np.isnan(weighted_kappa([4, 4], [4, 4]))  # no variation: undefined
    with pytest.raises(ValueError, match=r"ratings \[9\] are not among"):
        weighted_kappa([9], [1])


def test_repeats_come_later_with_new_positions_and_are_never_counted():
    pool = assignment.unit_pool(GRIDS, {}, ("rating", "pairwise", "ranking"))
    counts: dict[str, int] = {}
    plan = assignment.plan_trials(
        pool,
        counts,
        protocols=("rating", "pairwise", "ranking"),
        trials_per_participant=4,
        attention_check_rate=0,
        rng=np.random.default_rng(1),
        repeat_rate=0.5,
    )
    blocks = [u.protocol for u in plan]
    assert blocks == ["rating"] * 6 + ["pairwise"] * 6 + ["ranking"] * 3  # 4 + 2 repeats; 4 + 2; 2 + 1
    for i, u in enumerate(plan):
        if u.is_repeat:
            first = next(j for j, v in enumerate(plan) if v.key == u.original)
            assert first < i and plan[first].protocol == u.protocol
            if len(u.grid_ids) > 1:
                assert all(a != b for a, b in zip(u.grid_ids, plan[first].grid_ids, strict=True))  # every grid moved
    assignment.count_plan(counts, plan)
    assert not any(k.startswith("repeat:") for k in counts) and sum(counts.values()) == 4 + 4 + 2


def _repeats(rows):
    return pd.DataFrame(rows, columns=["participant", "protocol", "first", "repeat", "agree"])


def test_consistency_per_protocol_and_participant_with_bootstrap_intervals():
    rng = np.random.default_rng(2)
    rows = []
    for pid in range(30):
        noise = 0 if pid < 20 else 3  # ten erratic raters
        for _ in range(4):
            a = int(rng.integers(1, 8))
            b = int(np.clip(a + rng.integers(-noise, noise + 1), 1, 7))
            rows.append((pid, "rating", a, b, abs(a - b) <= 1))
        c = str(rng.choice(["g1", "g2", "tie"]))
        rows.append((pid, "pairwise", c, c if noise == 0 else str(rng.choice(["g1", "g2", "tie"])), None))
    df = _repeats(rows)
    df.loc[df["protocol"] == "pairwise", "agree"] = df["first"] == df["repeat"]
    rating, pairwise = retest_consistency(df, n_boot=300, seed=4)
    r = df[df["protocol"] == "rating"]
    assert rating.kappa == pytest.approx(weighted_kappa(r["first"].astype(int), r["repeat"].astype(int)))
    assert rating.kappa_ci_low < rating.kappa < rating.kappa_ci_high and rating.participants == 30
    assert rating.agreement_ci_low <= rating.agreement <= rating.agreement_ci_high
    assert pairwise.kappa is None and pairwise.pairs == 30
    assert retest_consistency(df, n_boot=300, seed=4) == [rating, pairwise]  # seeded
    people = {(p.participant, p.protocol): p for p in per_participant(df)}
    assert people[(0, "rating")].kappa == 1.0 and people[(0, "pairwise")].agreement == 1.0
    erratic = np.mean([people[(pid, "rating")].agreement for pid in range(20, 30)])
    assert erratic < 1.0
    with pytest.raises(ValueError, match="lacks"):
        retest_consistency(df.drop(columns="agree"))
    # the spread over participants, recomputed with pandas (quantiles interpolate linearly in both)
    by_person = df.assign(agree=df["agree"].astype(float)).groupby(["protocol", "participant"])["agree"].mean()
    for s in participant_spread(df):
        a = by_person.loc[s.protocol]
        assert s.participants == len(a) == 30
        assert (s.lowest, s.q1, s.median, s.q3) == pytest.approx(
            (a.min(), a.quantile(0.25), a.median(), a.quantile(0.75))
        )
        assert s.below_half == int((a < 0.5).sum())
    rating_spread = participant_spread(df)[0]
    assert rating_spread.protocol == "rating" and rating_spread.lowest < rating_spread.median == 1.0


def test_inconsistent_simulated_raters_are_found_and_excluded(tiny_study):
    from survey.analysis.results import compute_results
    from survey.analysis.simulate import ResponseModel, simulate

    _, sessions, study = tiny_study("rep", trials_per_participant=4, repeat_rate=0.5, ask_comment=False)
    sim = simulate(sessions, study.id, 16, seed=3, inconsistent=0.4, model=ResponseModel(noise_sd=0.3, bias_sd=0.3))
    t = tables(sessions, study.id)
    assert len(t["repeats"]) == 16 * 2
    assert t["judgements"].drop_duplicates("response_id").shape[0] == 16 * 4  # repeats are not judgements
    p = t["participants"].set_index("participant")["consistency"]
    erratic = sorted(sim.inconsistent)
    assert erratic and p.drop(index=erratic).mean() > p.loc[erratic].mean()
    flow = apply_exclusions(t["participants"], ExclusionRules(consistency_min=0.99))
    assert flow.excluded_inconsistent >= 1 and flow.kept + flow.excluded_inconsistent == 16
    results = compute_results(sessions, study.id, n_boot=50, rules=ExclusionRules(consistency_min=0.99))
    (rating,) = results.consistency
    assert rating.pairs == 2 * flow.kept
    (spread,) = results.consistency_spread
    assert spread.participants == flow.kept and spread.lowest >= 0.99  # the excluded are not in it
    from survey.analysis.report import render_html

    page = render_html(results)
    assert "Per participant: each participant's agreement with themselves" in page and "below 0.5" in page
    with sessions() as s:
        assert sum(planning.unit_counts(s, study.id).values()) == 16 * 4
    assert service.current_study(sessions, "rep").status == "open"
