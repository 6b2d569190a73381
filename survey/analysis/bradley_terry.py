"""Pairwise protocol: the win matrix, wins/ties/losses per pair of conditions, and Bradley-Terry strengths with
participant-bootstrap CIs (uniform assignment) or, for an adaptive study, Firth's bias-reduced strengths with
Wald CIs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from survey.analysis.bootstrap import StrengthEstimate, bootstrap_strengths, ranks_from_intervals
from survey.analysis.newton import newton_minimize
from survey.participants.bradley_terry_firth import firth_fit


def win_matrix(judgements: pd.DataFrame) -> pd.DataFrame:
    """Wins of row condition over column condition (ties count 0.5 each way), from pairwise answers.

    Conditions sharing one grid are credited together with that grid's outcome.
    """
    p = judgements[(judgements["protocol"] == "pairwise") & ~judgements["is_catch"].astype(bool)]
    conds = sorted(p["condition"].unique())
    w = pd.DataFrame(0.0, index=conds, columns=conds)
    for _, g in p.groupby("response_id"):
        left = g[g["grid_position"] == 0]
        right = g[g["grid_position"] == 1]
        for _, x in left.iterrows():
            for _, y in right.iterrows():
                if x["condition"] == y["condition"]:
                    continue
                if x["outcome"] == "tie":
                    w.loc[x["condition"], y["condition"]] += 0.5
                    w.loc[y["condition"], x["condition"]] += 0.5
                elif x["outcome"] == "win":
                    w.loc[x["condition"], y["condition"]] += 1
                else:
                    w.loc[y["condition"], x["condition"]] += 1
    return w


@dataclass(frozen=True)
class WinTieLoss:
    a: str
    b: str
    n: int  # pairwise answers with a grid of a on one side and a grid of b on the other
    wins: int  # a's grid chosen
    ties: int
    losses: int  # b's grid chosen
    win_rate: float  # (wins + ties / 2) / n; nan when never compared


def _pairwise_sides(judgements: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """Pairwise answers (attention checks left out) as rows (participant, a, b, outcome of a against b),
    both directions, one per condition of the left grid x condition of the right grid."""
    p = judgements[(judgements["protocol"] == "pairwise") & ~judgements["is_catch"].astype(bool)]
    conds = sorted(p["condition"].unique())
    cols = ["response_id", "participant", "condition", "outcome"]
    left = p.loc[p["grid_position"] == 0, cols]
    right = p.loc[p["grid_position"] == 1, ["response_id", "condition", "outcome"]]
    m = left.merge(right, on="response_id", suffixes=("_a", "_b"))
    m = m[m["condition_a"] != m["condition_b"]]
    names = ["participant", "a", "b", "outcome"]
    both = pd.concat(
        [
            m[["participant", "condition_a", "condition_b", "outcome_a"]].set_axis(names, axis=1),
            m[["participant", "condition_b", "condition_a", "outcome_b"]].set_axis(names, axis=1),
        ]
    )
    return conds, both


def win_tie_loss(judgements: pd.DataFrame) -> list[WinTieLoss]:
    """Wins, ties and losses of condition a against condition b, for every ordered pair of conditions
    seen in pairwise answers (attention checks left out). A grid several conditions share credits
    each of them, as in :func:`win_matrix`; (a, b) and (b, a) mirror each other."""
    conds, both = _pairwise_sides(judgements)
    counts = both.groupby(["a", "b", "outcome"]).size()
    out = []
    for a, b in itertools.permutations(conds, 2):
        w, t, lo = (int(counts.get((a, b, o), 0)) for o in ("win", "tie", "loss"))
        n = w + t + lo
        out.append(WinTieLoss(a, b, n, w, t, lo, (w + t / 2) / n if n else float("nan")))
    return out


def _bt_negloglik(theta: np.ndarray, wins: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of Bradley-Terry strengths (log scale) and its gradient.

    wins[i, j] = times i beat j (ties as half wins); P(i beats j) = sigmoid(theta_i - theta_j).
    A tiny ridge (1e-6) keeps the fit finite when a condition never loses.
    """
    diff = theta[:, None] - theta[None, :]
    logp = -np.logaddexp(0.0, -diff)  # log sigmoid
    nll = -(wins * logp).sum() + 1e-6 * (theta**2).sum()
    p_loss = 1.0 - np.exp(logp)  # sigmoid(-diff)
    g = wins * p_loss
    grad = -(g.sum(axis=1) - g.sum(axis=0)) + 2e-6 * theta
    return float(nll), grad


def _bt_hessian(theta: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """Hessian of :func:`_bt_negloglik`: a weighted graph Laplacian plus the ridge."""
    from scipy.special import expit

    p = expit(theta[:, None] - theta[None, :])
    c = (wins + wins.T) * p * (1.0 - p)
    np.fill_diagonal(c, 0.0)
    return np.diag(c.sum(axis=1)) - c + 2e-6 * np.eye(len(theta))


def bradley_terry(wins: np.ndarray) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry log-strengths, centred to mean 0."""
    wins = np.asarray(wins, dtype=float)
    if wins.ndim != 2 or wins.shape[0] != wins.shape[1] or (wins < 0).any():
        raise ValueError("wins must be a square matrix of non-negative counts")
    x = newton_minimize(
        lambda t: _bt_negloglik(t, wins), lambda t: _bt_hessian(t, wins), np.zeros(wins.shape[0]), what="Bradley-Terry"
    )
    return x - x.mean()


def participant_win_matrices(judgements: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The conditions and, per participant, the :func:`win_matrix` of their pairwise answers (ties half
    a win each way): participants x conditions x conditions."""
    conds, both = _pairwise_sides(judgements)
    people, person = np.unique(both["participant"].to_numpy(), return_inverse=True)
    mats = np.zeros((len(people), len(conds), len(conds)))
    credit = (both["outcome"] == "win").to_numpy() + 0.5 * (both["outcome"] == "tie").to_numpy()
    a, b = np.searchsorted(conds, both["a"].to_numpy()), np.searchsorted(conds, both["b"].to_numpy())
    np.add.at(mats, (person, a, b), credit)
    return conds, mats


def bradley_terry_replicates(
    judgements: pd.DataFrame, *, n_boot: int, rng: np.random.Generator
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The conditions, the BT log-strengths and ``n_boot`` participant-resampled replicates of them."""
    conds, mats = participant_win_matrices(judgements)
    if not conds:
        return conds, np.zeros(0), np.zeros((n_boot, 0))
    est = bradley_terry(mats.sum(axis=0))
    boots = np.array([bradley_terry(mats[rng.integers(0, len(mats), len(mats))].sum(axis=0)) for _ in range(n_boot)])
    return conds, est, boots


def bradley_terry_bootstrap(
    judgements: pd.DataFrame, *, n_boot: int = 500, confidence: float = 0.95, rng: np.random.Generator
) -> list[StrengthEstimate]:
    """BT strengths with participant-resampling percentile CIs and ranks with ties."""
    return bootstrap_strengths(bradley_terry_replicates, judgements, n_boot=n_boot, confidence=confidence, rng=rng)


def firth_wald_estimates(conds: list[str], wins: np.ndarray, *, confidence: float = 0.95) -> list[StrengthEstimate]:
    """Per condition, the Firth log-strength (:mod:`survey.participants.bradley_terry_firth`) with its
    Wald interval (the inverse Fisher information at the estimate) and ranks with ties
    (:func:`survey.analysis.bootstrap.ranks_from_intervals`): what an adaptive study reports, the
    interval whose coverage ``bench/adaptive_pairs.py`` measures."""
    if len(conds) != len(wins):
        raise ValueError(f"{len(conds)} condition names for a {len(wins)} x {len(wins)} win matrix")
    fit = firth_fit(wins)
    z = float(norm.ppf(0.5 + confidence / 2))
    lo, hi = fit.strength - z * fit.std_error, fit.strength + z * fit.std_error
    ranks = ranks_from_intervals(fit.strength, lo, hi)
    return [
        StrengthEstimate(c, float(fit.strength[i]), float(lo[i]), float(hi[i]), int(ranks[i]))
        for i, c in enumerate(conds)
    ]


def bradley_terry_firth_wald(judgements: pd.DataFrame, *, confidence: float = 0.95) -> list[StrengthEstimate]:
    """:func:`firth_wald_estimates` of the pairwise answers (attention checks left out; ties half a win
    each way, as :func:`win_matrix`)."""
    conds, mats = participant_win_matrices(judgements)
    return firth_wald_estimates(conds, mats.sum(axis=0), confidence=confidence) if conds else []
