"""Pairwise statistics (survey.analysis.bradley_terry): the Bradley-Terry fit against its gradient and
a known solution, win/tie/loss tables by hand, and the true order recovered from a simulated study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from survey.analysis.bradley_terry import _bt_negloglik, bradley_terry, bradley_terry_bootstrap, win_matrix
from survey.analysis.plackett_luce import best_worst_scores
from survey.analysis.simulate import ResponseModel, simulate
from survey.participants import service
from survey.study.export import tables


def test_bradley_terry_gradient_and_known_solution():
    rng = np.random.default_rng(1)
    wins = rng.integers(1, 10, (4, 4)).astype(float)
    np.fill_diagonal(wins, 0)
    err = optimize.check_grad(
        lambda t: _bt_negloglik(t, wins)[0], lambda t: _bt_negloglik(t, wins)[1], rng.normal(size=4)
    )
    assert err < 1e-4
    # two items, a beats b 3 times out of 4: MLE difference = log(3)
    theta = bradley_terry(np.array([[0, 3.0], [1.0, 0]]))
    assert theta[0] - theta[1] == pytest.approx(np.log(3), abs=1e-3)
    with pytest.raises(ValueError, match="square"):
        bradley_terry(np.ones((2, 3)))


def test_simulated_pairwise_and_ranking_recover_the_true_order(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    effects = {"efficientnet/u2netp": 1.5, "efficientnet/none": 0.5, "ssim/none": -0.5, "ssim/u2netp": -1.5}
    simulate(make_session, study.id, 40, seed=7, model=ResponseModel(effects=effects, noise_sd=0.7))
    j = tables(make_session, study.id)["judgements"]
    truth = sorted(effects, key=effects.get, reverse=True)
    bt = bradley_terry_bootstrap(j, n_boot=100, rng=np.random.default_rng(0))
    assert [e.condition for e in sorted(bt, key=lambda e: -e.strength)] == truth
    assert all(e.ci_low <= e.strength <= e.ci_high for e in bt)
    bw = best_worst_scores(j, n_boot=200, rng=np.random.default_rng(0))
    assert min(bw, key=lambda b: -b.score).condition == truth[0]
    assert [b.condition for b in sorted(bw, key=lambda b: -b.score)][-1] == truth[-1]
    w = win_matrix(j)
    assert w.loc[truth[0], truth[-1]] > w.loc[truth[-1], truth[0]]


def _pairwise(rows):
    """Pairwise judgements from (response, participant, left condition(s), right condition(s), choice)."""
    out = []
    for rid, pid, left, right, choice in rows:
        for pos, conds in enumerate((left, right)):
            outcome = "tie" if choice == "tie" else "win" if (choice == "left") == (pos == 0) else "loss"
            for c in conds.split("+"):
                out.append(
                    {
                        "protocol": "pairwise",
                        "is_catch": False,
                        "response_id": rid,
                        "participant": pid,
                        "grid": f"{rid}-{pos}",
                        "grid_position": pos,
                        "condition": c,
                        "outcome": outcome,
                    }
                )
    return pd.DataFrame(out)


def test_win_tie_loss_by_hand():
    from survey.analysis.bradley_terry import win_tie_loss

    j = _pairwise(
        [
            (1, 1, "a", "b", "left"),
            (2, 1, "b", "a", "left"),
            (3, 2, "a", "b", "tie"),
            (4, 2, "c", "a", "right"),
            (5, 3, "a+b", "c", "left"),
        ]
    )  # a grid shared by a and b
    t = {(w.a, w.b): w for w in win_tie_loss(j)}
    assert len(t) == 6  # every ordered pair of the three conditions
    assert (t["a", "b"].wins, t["a", "b"].ties, t["a", "b"].losses, t["a", "b"].n) == (1, 1, 1, 3)
    assert (t["b", "a"].wins, t["b", "a"].ties, t["b", "a"].losses) == (1, 1, 1)
    assert (t["a", "c"].wins, t["a", "c"].losses, t["c", "a"].losses) == (2, 0, 2)
    assert (t["b", "c"].wins, t["b", "c"].n) == (1, 1)
    assert t["a", "b"].win_rate == pytest.approx(0.5) and t["a", "c"].win_rate == 1.0
    w = win_matrix(j)
    for (a, b), x in t.items():  # the BT input counts ties as half wins
        assert w.loc[a, b] == pytest.approx(x.wins + x.ties / 2)
    bt = bradley_terry_bootstrap(j, n_boot=20, rng=np.random.default_rng(0))  # per-participant matrices, summed
    assert [e.strength for e in bt] == pytest.approx(bradley_terry(w.to_numpy()), abs=1e-6)
