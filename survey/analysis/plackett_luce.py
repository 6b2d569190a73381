"""Ranking protocol (best and worst of several grids): best-worst scores and the sequential best-worst
Plackett-Luce model, both with participant-bootstrap CIs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.analysis.bootstrap import StrengthEstimate, bootstrap_strengths
from survey.analysis.newton import newton_minimize


def _ranking_iv(judgements: pd.DataFrame) -> pd.DataFrame:
    need = {"protocol", "is_catch", "participant", "response_id", "grid_position", "condition", "outcome"}
    missing = need - set(judgements.columns)
    if missing:
        raise ValueError(f"judgements lack {sorted(missing)}; use survey.study.export.tables()")
    return judgements[(judgements["protocol"] == "ranking") & ~judgements["is_catch"].astype(bool)]


@dataclass(frozen=True)
class BestWorst:
    condition: str
    shown: int
    best: int
    worst: int
    score: float  # (best - worst) / shown, in [-1, 1]
    ci_low: float  # participant-clustered percentile bootstrap; nan with fewer than 2 participants
    ci_high: float


def best_worst_counts(judgements: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
    """Per participant (rows) and condition (columns): times shown, chosen best, chosen worst (None: no
    ranking answers)."""
    r = _ranking_iv(judgements)
    if r.empty:
        return None
    counts = (
        r.assign(best=r["outcome"] == "best", worst=r["outcome"] == "worst")
        .groupby(["participant", "condition"])[["best", "worst"]]
        .agg(["size", "sum"])
    )
    shown = counts[("best", "size")].unstack(fill_value=0)
    best = counts[("best", "sum")].unstack(fill_value=0).reindex_like(shown)
    worst = counts[("worst", "sum")].unstack(fill_value=0).reindex_like(shown)
    return shown, best, worst


def best_worst_scores(
    judgements: pd.DataFrame, *, n_boot: int = 2000, confidence: float = 0.95, rng: np.random.Generator
) -> list[BestWorst]:
    """Best-worst score per condition, (times best - times worst) / times shown, with a percentile
    bootstrap CI that resamples whole participants (the score is a ratio of participant totals)."""
    counts = best_worst_counts(judgements)
    if counts is None:
        return []
    shown, best, worst = counts
    n_people = len(shown)
    lo = hi = np.full(shown.shape[1], np.nan)
    if n_people >= 2:
        w = rng.multinomial(n_people, np.full(n_people, 1.0 / n_people), size=n_boot)
        with np.errstate(invalid="ignore", divide="ignore"):
            boots = (w @ best.to_numpy() - w @ worst.to_numpy()) / (w @ shown.to_numpy())
        alpha = (1 - confidence) / 2
        lo, hi = np.nanquantile(boots, [alpha, 1 - alpha], axis=0)
    tot_s, tot_b, tot_w = shown.sum(), best.sum(), worst.sum()
    return [
        BestWorst(
            str(c),
            int(tot_s[c]),
            int(tot_b[c]),
            int(tot_w[c]),
            float((tot_b[c] - tot_w[c]) / tot_s[c]),
            float(lo[i]),
            float(hi[i]),
        )
        for i, c in enumerate(shown.columns)
    ]


def _pl_parts(theta, choice_sets, best):
    """Utilities u (T x S), best-choice probabilities p over the shown options and worst-choice
    probabilities q over the others, with their log-normalisers."""
    from scipy.special import logsumexp

    u = np.einsum("tsk,k->ts", choice_sets, theta)
    shown = choice_sets.sum(axis=2) > 0
    others = shown.copy()
    others[np.arange(len(u)), best] = False
    ub = np.where(shown, u, -np.inf)
    uw = np.where(others, -u, -np.inf)
    lse_b, lse_w = logsumexp(ub, axis=1), logsumexp(uw, axis=1)
    return u, np.exp(ub - lse_b[:, None]), np.exp(uw - lse_w[:, None]), lse_b, lse_w


def _pl_negloglik(
    theta: np.ndarray, choice_sets: np.ndarray, best: np.ndarray, worst: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of the sequential best-worst Plackett-Luce model and its gradient.

    Trial t shows the options with a non-zero row in ``choice_sets[t]`` (T x S x K); option s has
    utility u_s = choice_sets[t, s] @ theta. The best is chosen from all options with
    P = exp(u_best) / sum exp(u), then the worst from the others with P = exp(-u_worst) / sum exp(-u).
    A tiny ridge (1e-6) keeps the fit finite when a condition is always best.
    """
    u, p, q, lse_b, lse_w = _pl_parts(theta, choice_sets, best)
    rows = np.arange(len(u))
    ll = u[rows, best] - lse_b - u[rows, worst] - lse_w
    nll = -(weights * ll).sum() + 1e-6 * (theta**2).sum()
    g_u = q - p  # d ll / d u
    g_u[rows, best] += 1.0
    g_u[rows, worst] -= 1.0
    grad = -np.einsum("ts,tsk,t->k", g_u, choice_sets, weights) + 2e-6 * theta
    return float(nll), grad


def _pl_hessian(theta: np.ndarray, choice_sets: np.ndarray, best: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Hessian of :func:`_pl_negloglik`: per trial X' [diag(p) - p p' + diag(q) - q q'] X, weighted."""
    _, p, q, _, _ = _pl_parts(theta, choice_sets, best)
    xp = np.einsum("tsk,ts->tk", choice_sets, p)
    xq = np.einsum("tsk,ts->tk", choice_sets, q)
    h = (
        np.einsum("t,tsk,ts,tsl->kl", weights, choice_sets, p + q, choice_sets)
        - np.einsum("t,tk,tl->kl", weights, xp, xp)
        - np.einsum("t,tk,tl->kl", weights, xq, xq)
    )
    return h + 2e-6 * np.eye(len(theta))


def plackett_luce(
    choice_sets: np.ndarray,
    best: np.ndarray,
    worst: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    initial: np.ndarray | None = None,
) -> np.ndarray:
    """Maximum-likelihood log-strengths of the sequential best-worst Plackett-Luce model (see
    :func:`_pl_negloglik`), centred to mean 0. With two options per trial it is Bradley-Terry; with
    three it is Plackett-Luce on the full ranking."""
    choice_sets = np.asarray(choice_sets, dtype=float)
    best, worst = np.asarray(best, dtype=int), np.asarray(worst, dtype=int)
    if choice_sets.ndim != 3 or best.shape != worst.shape or best.shape != choice_sets.shape[:1]:
        raise ValueError("choice_sets must be trials x options x conditions, with one best and one worst per trial")
    if (best == worst).any():
        raise ValueError("a trial's best and worst option must differ")
    w = np.ones(len(best)) if weights is None else np.asarray(weights, dtype=float)
    k = choice_sets.shape[2]
    x0 = np.zeros(k) if initial is None else np.asarray(initial, dtype=float)
    x = newton_minimize(
        lambda t: _pl_negloglik(t, choice_sets, best, worst, w),
        lambda t: _pl_hessian(t, choice_sets, best, w),
        x0,
        what="Plackett-Luce",
    )
    return x - x.mean()


def ranking_choice_sets(judgements: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ranking answers as (conditions, choice_sets, best, worst, participant per trial). An option's
    row weights each condition that produced its grid by 1 / (number of such conditions), so a
    shared grid's utility is the mean of their strengths (as in the simulation's response model)."""
    r = _ranking_iv(judgements)
    conds = sorted(r["condition"].unique())
    trials, t = np.unique(r["response_id"].to_numpy(), return_inverse=True)
    pos = r["grid_position"].to_numpy(dtype=int)
    k = np.searchsorted(conds, r["condition"].to_numpy())
    share = 1.0 / r.groupby(["response_id", "grid_position"])["condition"].transform("size").to_numpy()
    sets = np.zeros((len(trials), pos.max() + 1 if len(pos) else 0, len(conds)))
    np.add.at(sets, (t, pos, k), share)
    best, worst = np.full(len(trials), -1), np.full(len(trials), -1)
    outcome = r["outcome"].to_numpy()
    best[t[outcome == "best"]] = pos[outcome == "best"]
    worst[t[outcome == "worst"]] = pos[outcome == "worst"]
    participant = np.zeros(len(trials), dtype=r["participant"].to_numpy().dtype)
    participant[t] = r["participant"].to_numpy()
    ok = (best >= 0) & (worst >= 0)
    return conds, sets[ok], best[ok], worst[ok], participant[ok]


def _distinct_trials(choice_sets: np.ndarray, best: np.ndarray, worst: np.ndarray):
    """Trials that differ only in the display order of their options have the same likelihood:
    keep one of each kind (options in a canonical order) and the kind of every trial."""
    kinds: dict[tuple, int] = {}
    kind_of = np.empty(len(best), dtype=int)
    reps = []
    for t in range(len(best)):
        rows = [tuple(np.round(r, 12)) for r in choice_sets[t]]
        order = sorted(range(len(rows)), key=rows.__getitem__)
        key = (tuple(rows[i] for i in order), order.index(int(best[t])), order.index(int(worst[t])))
        if key not in kinds:
            kinds[key] = len(kinds)
            reps.append((choice_sets[t][order], key[1], key[2]))
        kind_of[t] = kinds[key]
    return (np.stack([r[0] for r in reps]), np.array([r[1] for r in reps]), np.array([r[2] for r in reps]), kind_of)


def plackett_luce_replicates(
    judgements: pd.DataFrame, *, n_boot: int, rng: np.random.Generator
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """The conditions, the best-worst Plackett-Luce log-strengths and ``n_boot`` participant-resampled
    replicates (None with fewer than two participants); no conditions when there is nothing to fit."""
    conds, sets, best, worst, participant = ranking_choice_sets(judgements)
    if len(best) == 0 or len(conds) < 2:
        return [], np.zeros(0), None
    sets, best, worst, pattern = _distinct_trials(sets, best, worst)
    people, person = np.unique(participant, return_inverse=True)
    per_person = np.zeros((len(best), len(people)))  # trials of each distinct kind per participant
    np.add.at(per_person, (pattern, person), 1.0)
    est = plackett_luce(sets, best, worst, weights=per_person.sum(axis=1))
    boots = None
    if len(people) >= 2:
        draws = rng.multinomial(len(people), np.full(len(people), 1.0 / len(people)), size=n_boot)
        boots = np.array([plackett_luce(sets, best, worst, weights=w, initial=est) for w in draws @ per_person.T])
    return conds, est, boots


def plackett_luce_bootstrap(
    judgements: pd.DataFrame, *, n_boot: int = 500, confidence: float = 0.95, rng: np.random.Generator
) -> list[StrengthEstimate]:
    """Best-worst Plackett-Luce strengths with participant-resampling percentile CIs and ranks with ties."""
    return bootstrap_strengths(plackett_luce_replicates, judgements, n_boot=n_boot, confidence=confidence, rng=rng)
