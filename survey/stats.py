"""Preference statistics: pure functions over the tidy tables of :mod:`survey.export`.

Every function checks its input first (``_iv`` helpers), takes random generators
explicitly, and returns a frozen result object; the report only formats them.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

# --- exclusions ---------------------------------------------------------------------------


def nan_to_none(x):
    """``x`` (nested dicts, lists, tuples) with float NaN replaced by None: JSON has no NaN."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [nan_to_none(v) for v in x]
    return x


@dataclass(frozen=True)
class ExclusionRules:
    failed_checks_max: int | None = 0  # exclude participants with more failed attention checks
    too_fast_max: int | None = None  # exclude participants with more too-fast answers
    require_complete: bool = True  # exclude participants who did not finish every trial


@dataclass(frozen=True)
class ExclusionFlow:
    started: int
    completed: int
    excluded_failed_checks: int
    excluded_too_fast: int
    excluded_incomplete: int
    kept: int
    kept_ids: tuple[int, ...]


def apply_exclusions(participants: pd.DataFrame, rules: ExclusionRules = ExclusionRules()) -> ExclusionFlow:
    """Which participants are analysed. Rules apply in order (checks, speed, completeness);
    a participant is counted under the first rule that excludes them."""
    missing = {"participant", "flags", "trials_done_at"} - set(participants.columns)
    if missing:
        raise ValueError(f"participants table lacks {sorted(missing)}; use survey.export.tables()")
    kept, failed, fast, incomplete = [], 0, 0, 0
    completed = 0
    for row in participants.itertuples(index=False):
        flags = [f for f in (row.flags or "").split(";") if f]
        done = not pd.isna(row.trials_done_at)
        completed += done
        if rules.failed_checks_max is not None and sum(f.startswith("failed_check:") for f in flags) > rules.failed_checks_max:
            failed += 1
        elif rules.too_fast_max is not None and sum(f.startswith("too_fast:") for f in flags) > rules.too_fast_max:
            fast += 1
        elif rules.require_complete and not done:
            incomplete += 1
        else:
            kept.append(int(row.participant))
    return ExclusionFlow(len(participants), completed, failed, fast, incomplete, len(kept), tuple(kept))


# --- rating protocol -----------------------------------------------------------------------


def _rating_iv(judgements: pd.DataFrame, value: str = "rating") -> pd.DataFrame:
    """Rating answers without attention checks, ``value`` as float. Takes the judgements table, or
    the tidy ratings table (:func:`survey.analysis.ratings_from_judgements`, already filtered)."""
    need = {"participant", "reference", "condition", value}
    missing = need - set(judgements.columns)
    if missing:
        raise ValueError(f"judgements lack {sorted(missing)}; use survey.export.tables()")
    r = judgements
    if "protocol" in r.columns:
        r = r[r["protocol"] == "rating"]
    if "is_catch" in r.columns:
        r = r[~r["is_catch"].astype(bool)]
    return r.assign(**{value: r[value].astype(float)})


def block_matrix(judgements: pd.DataFrame, block: tuple[str, ...] = ("reference",), *,
                 value: str = "rating") -> pd.DataFrame:
    """Mean ``value`` per block x condition, complete blocks only (every condition rated)."""
    r = _rating_iv(judgements, value)
    m = r.pivot_table(index=list(block), columns="condition", values=value, aggfunc="mean")
    return m.dropna()


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float
    pvalue: float
    kendalls_w: float
    n_blocks: int
    k: int
    block: tuple[str, ...]


def friedman(judgements: pd.DataFrame, block: tuple[str, ...] = ("reference",), *,
             value: str = "rating") -> FriedmanResult:
    """Friedman test of rating differences between conditions, with Kendall's W = chi2 / (n (k - 1)).

    Blocks are ``block`` groups (default: references, averaging over participants; pass
    ``("participant", "reference")`` when every participant rated every condition of a
    reference). Only complete blocks enter; their number is reported. ``value`` names the
    column tested (``"z"`` for per-rater z-scores, see :func:`zscore_ratings`).
    """
    m = block_matrix(judgements, block, value=value)
    n, k = m.shape
    if k < 3 or n < 2:
        return FriedmanResult(float("nan"), float("nan"), float("nan"), n, k, block)
    res = stats.friedmanchisquare(*[m[c].to_numpy() for c in m.columns])
    return FriedmanResult(float(res.statistic), float(res.pvalue), float(res.statistic / (n * (k - 1))), n, k, block)


@dataclass(frozen=True)
class PairedComparison:
    a: str
    b: str
    n: int
    median_difference: float  # a - b
    statistic: float
    pvalue: float
    pvalue_holm: float
    rank_biserial: float  # matched-pairs effect size in [-1, 1]; > 0: a rated higher


def wilcoxon_signed_rank(d: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of paired differences ``d``: (statistic, p-value), equal to
    ``scipy.stats.wilcoxon(d, zero_method="wilcox")`` (statistic min(R+, R-)).

    scipy answers small samples with ties or zeros (n <= 13) by a permutation test enumerating all
    2**n sign flips, which is slow inside repeated simulations; here that exact null distribution
    of R+ is built by dynamic programming over the (doubled, integral) midranks instead. Every
    other case is scipy's own computation.
    """
    d = np.asarray(d, dtype=float)
    nz = d[d != 0]
    if len(nz) == 0:
        return float("nan"), float("nan")
    ties = len(np.unique(np.abs(nz))) < len(nz)
    if len(d) > 13 or not (ties or len(nz) < len(d)):
        res = stats.wilcoxon(d, zero_method="wilcox")
        return float(res.statistic), float(res.pvalue)
    r2 = np.rint(2 * stats.rankdata(np.abs(nz))).astype(int)  # midranks are multiples of 1/2
    counts = np.zeros(r2.sum() + 1)
    counts[0] = 1.0
    for r in r2:  # distribution of 2 R+ over all sign assignments
        counts[r:] = counts[r:] + counts[:-r].copy()
    observed = int(r2[nz > 0].sum())
    total = counts.sum()
    p = min(1.0, 2 * min(counts[: observed + 1].sum() / total, counts[observed:].sum() / total))
    return float(min(observed, r2.sum() - observed) / 2), float(p)


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values (as statsmodels' ``multipletests(method="holm")``, without
    the garbage collection it runs on every call)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def pairwise_wilcoxon(judgements: pd.DataFrame, block: tuple[str, ...] = ("reference",)) -> list[PairedComparison]:
    """Wilcoxon signed-rank test for every pair of conditions over blocks rating both, Holm-corrected."""
    r = _rating_iv(judgements)
    m = r.pivot_table(index=list(block), columns="condition", values="rating", aggfunc="mean")
    rows = []
    for a, b in itertools.combinations(sorted(m.columns), 2):
        d = (m[a] - m[b]).dropna().to_numpy()
        nz = d[d != 0]
        if len(nz) < 1:
            rows.append((a, b, len(d), float(np.median(d)) if len(d) else float("nan"), float("nan"), 1.0, 0.0))
            continue
        statistic, pvalue = wilcoxon_signed_rank(d)
        ranks = stats.rankdata(np.abs(nz))
        rbc = float((ranks[nz > 0].sum() - ranks[nz < 0].sum()) / ranks.sum())
        rows.append((a, b, len(d), float(np.median(d)), statistic, pvalue, rbc))
    if not rows:
        return []
    adjusted = holm([x[5] for x in rows])
    return [PairedComparison(a, b, n, md, st, p, float(ph), rbc)
            for (a, b, n, md, st, p, rbc), ph in zip(rows, adjusted)]


@dataclass(frozen=True)
class PrecisionAtK:
    condition: str
    n: int  # rated grids with ticks
    precision: float  # mean share of a grid's items people ticked as similar
    ci_low: float
    ci_high: float


def precision_at_k(judgements: pd.DataFrame, *, n_boot: int = 2000, rng: np.random.Generator) -> list[PrecisionAtK]:
    """Precision@k as judged by people: per condition, the mean share of grid items ticked
    "similar" (rating trials with ticks), with a participant-clustered bootstrap CI."""
    from .analysis import cluster_bootstrap_mean_ci

    r = _rating_iv(judgements)
    if "ticks" not in r.columns:
        raise ValueError("judgements lack 'ticks'; use survey.export.tables()")
    r = r[r["ticks"].notna()]
    share = r["ticks"].map(lambda t: float(np.mean(json.loads(t))) if isinstance(t, str) else float(np.mean(t)))
    r = r.assign(share=share)
    out = []
    for cond, g in r.groupby("condition", sort=True):
        lo, hi = cluster_bootstrap_mean_ci(g["share"].to_numpy(), g["participant"].to_numpy(), n_boot=n_boot, rng=rng)
        out.append(PrecisionAtK(cond, len(g), float(g["share"].mean()), lo, hi))
    return out


def zscore_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """The ratings with a column ``z``: each rating standardised within its participant,
    (rating - participant mean) / participant SD (population SD, ddof=0).

    Mean and SD are taken over the participant's distinct answers (``response_id``), so a
    rating of a grid several conditions share weighs once. A participant whose answers are
    all equal expresses no preference: their z-scores are 0.
    """
    r = _rating_iv(ratings)
    if "response_id" not in r.columns:
        raise ValueError("ratings lack 'response_id'; use survey.analysis.ratings_from_judgements()")
    answers = r.drop_duplicates("response_id").groupby("participant")["rating"]
    mean, sd = r["participant"].map(answers.mean()), r["participant"].map(answers.std(ddof=0))
    z = np.where(sd > 0, (r["rating"] - mean) / sd.where(sd > 0, 1.0), 0.0)
    return r.assign(z=z)


@dataclass(frozen=True)
class ZScoreSummary:
    condition: str
    method: str
    segmenter: str
    n: int
    mean: float  # mean per-rater z-score
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ZScoreResult:
    """Per-rater z-scored ratings: a robustness check against raters using the scale differently."""
    conditions: list[ZScoreSummary]
    friedman: FriedmanResult
    constant_raters: int  # participants whose answers were all equal (z = 0)
    confidence: float
    n_boot: int


def zscored_analysis(ratings: pd.DataFrame, *, n_boot: int = 2000, confidence: float = 0.95,
                     rng: np.random.Generator) -> ZScoreResult:
    """Condition means of per-rater z-scores with participant-clustered bootstrap CIs, and the
    Friedman test (reference blocks) on the z-scores."""
    from .analysis import cluster_bootstrap_mean_ci

    z = zscore_ratings(ratings)
    out = []
    for (cond, method, seg), g in z.groupby(["condition", "method", "segmenter"], sort=True):
        lo, hi = cluster_bootstrap_mean_ci(g["z"].to_numpy(), g["participant"].to_numpy(), n_boot=n_boot,
                                           confidence=confidence, rng=rng)
        out.append(ZScoreSummary(cond, method, seg, len(g), float(g["z"].mean()), lo, hi))
    spread = z.drop_duplicates("response_id").groupby("participant")["rating"].std(ddof=0)
    return ZScoreResult(out, friedman(z, value="z"), int((spread == 0).sum()), confidence, n_boot)


@dataclass(frozen=True)
class RatingDistribution:
    condition: str
    counts: tuple[int, ...]  # number of ratings 1, 2, ..., 7


def rating_distribution(ratings: pd.DataFrame) -> list[RatingDistribution]:
    """How often each condition got each rating 1..7."""
    r = _rating_iv(ratings)
    table = pd.crosstab(r["condition"], r["rating"].astype(int)).reindex(columns=range(1, 8), fill_value=0)
    return [RatingDistribution(str(c), tuple(int(x) for x in row)) for c, row in table.iterrows()]


# --- pairwise protocol: Bradley-Terry ---------------------------------------------------------


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
    both = pd.concat([m[["participant", "condition_a", "condition_b", "outcome_a"]].set_axis(names, axis=1),
                      m[["participant", "condition_b", "condition_a", "outcome_b"]].set_axis(names, axis=1)])
    return conds, both


def win_tie_loss(judgements: pd.DataFrame) -> list[WinTieLoss]:
    """Wins, ties and losses of condition a against condition b, for every ordered pair of conditions
    seen in pairwise answers (attention checks left out). A grid several conditions share credits
    each of them, as in :func:`win_matrix`; (a, b) and (b, a) mirror each other."""
    conds, both = _pairwise_sides(judgements)
    counts = both.groupby(["a", "b", "outcome"]).size()
    out = []
    for a, b in itertools.permutations(conds, 2):
        get = lambda o: int(counts.get((a, b, o), 0))  # noqa: E731
        w, t, lo = get("win"), get("tie"), get("loss")
        n = w + t + lo
        out.append(WinTieLoss(a, b, n, w, t, lo, (w + t / 2) / n if n else float("nan")))
    return out


def ranks_from_intervals(estimate: np.ndarray, ci_low: np.ndarray, ci_high: np.ndarray) -> np.ndarray:
    """Ranks (1 = best) with ties: going down the estimates, a condition whose interval overlaps
    the interval of the one just above it shares that one's rank; otherwise its rank is its position."""
    estimate, ci_low, ci_high = (np.asarray(x, dtype=float) for x in (estimate, ci_low, ci_high))
    order = np.argsort(-estimate, kind="stable")
    ranks = np.empty(len(estimate), dtype=int)
    rank = 1
    for pos, i in enumerate(order):
        if pos and ci_low[order[pos - 1]] > ci_high[i]:  # clearly below the previous one
            rank = pos + 1
        ranks[i] = rank
    return ranks


def _bt_negloglik(theta: np.ndarray, wins: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of Bradley-Terry strengths (log scale) and its gradient.

    wins[i, j] = times i beat j (ties as half wins); P(i beats j) = sigmoid(theta_i - theta_j).
    A tiny ridge (1e-6) keeps the fit finite when a condition never loses.
    """
    diff = theta[:, None] - theta[None, :]
    logp = -np.logaddexp(0.0, -diff)  # log sigmoid
    nll = -(wins * logp).sum() + 1e-6 * (theta ** 2).sum()
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


def _newton(fun, hess, x0: np.ndarray, *, what: str, max_iter: int = 200) -> np.ndarray:
    """Minimise a smooth convex function by Newton steps with backtracking line search.

    Used instead of scipy's L-BFGS-B, which with multithreaded OpenBLAS and busy cores ran
    40 times slower on these tiny problems (measured); everything here is small numpy work.
    Stops when the Newton decrement g' H^-1 g falls below 1e-12; raises RuntimeError otherwise.
    """
    x = np.asarray(x0, dtype=float).copy()
    f, g = fun(x)
    for _ in range(max_iter):
        step = np.linalg.solve(hess(x), g)
        decrement = float(g @ step)
        if decrement < 1e-12:
            return x
        t = 1.0
        while True:
            f_new, g_new = fun(x - t * step)
            if f_new <= f - 0.25 * t * decrement or t < 1e-12:
                break
            t /= 2
        x, f, g = x - t * step, f_new, g_new
    raise RuntimeError(f"{what} fit did not converge in {max_iter} Newton steps")


def bradley_terry(wins: np.ndarray) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry log-strengths, centred to mean 0."""
    wins = np.asarray(wins, dtype=float)
    if wins.ndim != 2 or wins.shape[0] != wins.shape[1] or (wins < 0).any():
        raise ValueError("wins must be a square matrix of non-negative counts")
    x = _newton(lambda t: _bt_negloglik(t, wins), lambda t: _bt_hessian(t, wins), np.zeros(wins.shape[0]),
                what="Bradley-Terry")
    return x - x.mean()


@dataclass(frozen=True)
class StrengthEstimate:
    """A condition's fitted strength (Bradley-Terry or Plackett-Luce) with its bootstrap CI."""

    condition: str
    strength: float  # log-strength, mean 0 over conditions
    ci_low: float
    ci_high: float
    rank: int  # 1 = best; conditions whose intervals overlap the better one share its rank


def _strength_estimates(conds: list[str], est: np.ndarray, boots: np.ndarray | None,
                        confidence: float) -> list[StrengthEstimate]:
    """Percentile CIs from bootstrap fits (rows of ``boots``) and ranks with ties; without
    ``boots`` (one participant) the CIs are NaN and the ranks follow the estimates."""
    if boots is None:
        lo = hi = np.full(len(conds), np.nan)
        ranks = np.argsort(np.argsort(-est)) + 1
    else:
        alpha = (1 - confidence) / 2
        lo, hi = np.quantile(boots, [alpha, 1 - alpha], axis=0)
        ranks = ranks_from_intervals(est, lo, hi)
    return [StrengthEstimate(c, float(est[i]), float(lo[i]), float(hi[i]), int(ranks[i])) for i, c in enumerate(conds)]


def bradley_terry_bootstrap(judgements: pd.DataFrame, *, n_boot: int = 500, confidence: float = 0.95,
                            rng: np.random.Generator) -> list[StrengthEstimate]:
    """BT strengths with participant-resampling percentile CIs and ranks with ties."""
    conds, both = _pairwise_sides(judgements)
    if not conds:
        return []
    # per participant, the win_matrix of their answers (ties half a win each way)
    people, person = np.unique(both["participant"].to_numpy(), return_inverse=True)
    mats = np.zeros((len(people), len(conds), len(conds)))
    credit = (both["outcome"] == "win").to_numpy() + 0.5 * (both["outcome"] == "tie").to_numpy()
    np.add.at(mats, (person, np.searchsorted(conds, both["a"].to_numpy()), np.searchsorted(conds, both["b"].to_numpy())),
              credit)
    est = bradley_terry(mats.sum(axis=0))
    boots = np.array([bradley_terry(mats[rng.integers(0, len(mats), len(mats))].sum(axis=0)) for _ in range(n_boot)])
    return _strength_estimates(conds, est, boots, confidence)


# --- ranking protocol ---------------------------------------------------------------------------


def _ranking_iv(judgements: pd.DataFrame) -> pd.DataFrame:
    need = {"protocol", "is_catch", "participant", "response_id", "grid_position", "condition", "outcome"}
    missing = need - set(judgements.columns)
    if missing:
        raise ValueError(f"judgements lack {sorted(missing)}; use survey.export.tables()")
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


def best_worst_scores(judgements: pd.DataFrame, *, n_boot: int = 2000, confidence: float = 0.95,
                      rng: np.random.Generator) -> list[BestWorst]:
    """Best-worst score per condition, (times best - times worst) / times shown, with a percentile
    bootstrap CI that resamples whole participants (the score is a ratio of participant totals)."""
    r = _ranking_iv(judgements)
    if r.empty:
        return []
    counts = (r.assign(best=r["outcome"] == "best", worst=r["outcome"] == "worst")
              .groupby(["participant", "condition"])[["best", "worst"]].agg(["size", "sum"]))
    shown = counts[("best", "size")].unstack(fill_value=0)
    best = counts[("best", "sum")].unstack(fill_value=0).reindex_like(shown)
    worst = counts[("worst", "sum")].unstack(fill_value=0).reindex_like(shown)
    n_people = len(shown)
    lo = hi = np.full(shown.shape[1], np.nan)
    if n_people >= 2:
        w = rng.multinomial(n_people, np.full(n_people, 1.0 / n_people), size=n_boot)
        with np.errstate(invalid="ignore", divide="ignore"):
            boots = (w @ best.to_numpy() - w @ worst.to_numpy()) / (w @ shown.to_numpy())
        alpha = (1 - confidence) / 2
        lo, hi = np.nanquantile(boots, [alpha, 1 - alpha], axis=0)
    tot_s, tot_b, tot_w = shown.sum(), best.sum(), worst.sum()
    return [BestWorst(str(c), int(tot_s[c]), int(tot_b[c]), int(tot_w[c]), float((tot_b[c] - tot_w[c]) / tot_s[c]),
                      float(lo[i]), float(hi[i])) for i, c in enumerate(shown.columns)]


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


def _pl_negloglik(theta: np.ndarray, choice_sets: np.ndarray, best: np.ndarray, worst: np.ndarray,
                  weights: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of the sequential best-worst Plackett-Luce model and its gradient.

    Trial t shows the options with a non-zero row in ``choice_sets[t]`` (T x S x K); option s has
    utility u_s = choice_sets[t, s] @ theta. The best is chosen from all options with
    P = exp(u_best) / sum exp(u), then the worst from the others with P = exp(-u_worst) / sum exp(-u).
    A tiny ridge (1e-6) keeps the fit finite when a condition is always best.
    """
    u, p, q, lse_b, lse_w = _pl_parts(theta, choice_sets, best)
    rows = np.arange(len(u))
    ll = u[rows, best] - lse_b - u[rows, worst] - lse_w
    nll = -(weights * ll).sum() + 1e-6 * (theta ** 2).sum()
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
    h = (np.einsum("t,tsk,ts,tsl->kl", weights, choice_sets, p + q, choice_sets)
         - np.einsum("t,tk,tl->kl", weights, xp, xp) - np.einsum("t,tk,tl->kl", weights, xq, xq))
    return h + 2e-6 * np.eye(len(theta))


def plackett_luce(choice_sets: np.ndarray, best: np.ndarray, worst: np.ndarray, *,
                  weights: np.ndarray | None = None, initial: np.ndarray | None = None) -> np.ndarray:
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
    x = _newton(lambda t: _pl_negloglik(t, choice_sets, best, worst, w),
                lambda t: _pl_hessian(t, choice_sets, best, w), x0, what="Plackett-Luce")
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


def plackett_luce_bootstrap(judgements: pd.DataFrame, *, n_boot: int = 500, confidence: float = 0.95,
                            rng: np.random.Generator) -> list[StrengthEstimate]:
    """Best-worst Plackett-Luce strengths with participant-resampling percentile CIs and ranks with ties."""
    conds, sets, best, worst, participant = ranking_choice_sets(judgements)
    if len(best) == 0 or len(conds) < 2:
        return []
    sets, best, worst, pattern = _distinct_trials(sets, best, worst)
    people, person = np.unique(participant, return_inverse=True)
    per_person = np.zeros((len(best), len(people)))  # trials of each distinct kind per participant
    np.add.at(per_person, (pattern, person), 1.0)
    est = plackett_luce(sets, best, worst, weights=per_person.sum(axis=1))
    boots = None
    if len(people) >= 2:
        draws = rng.multinomial(len(people), np.full(len(people), 1.0 / len(people)), size=n_boot)
        boots = np.array([plackett_luce(sets, best, worst, weights=w, initial=est) for w in draws @ per_person.T])
    return _strength_estimates(conds, est, boots, confidence)


# --- agreement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    protocol: str
    level: str  # Krippendorff level of measurement, always chosen explicitly
    alpha: float
    ci_low: float
    ci_high: float
    units: int  # judged units with at least two judgements
    raters: int


def krippendorff_alpha(units_by_rater: pd.DataFrame, level: str, *, n_boot: int = 1000,
                       rng: np.random.Generator) -> tuple[float, float, float]:
    """Krippendorff's alpha of a raters x units matrix (NaN = not judged) with a percentile
    bootstrap CI over units. ``level`` is required: 'nominal', 'ordinal', 'interval' or 'ratio'."""
    import krippendorff

    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    data = units_by_rater.to_numpy(dtype=float)
    data = data[:, (~np.isnan(data)).sum(axis=0) >= 2]  # only units judged at least twice carry information
    if data.shape[1] < 2 or len(np.unique(data[~np.isnan(data)])) < 2:
        return float("nan"), float("nan"), float("nan")
    alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    boots = []
    for _ in range(n_boot):
        sample = data[:, rng.integers(0, data.shape[1], data.shape[1])]
        if len(np.unique(sample[~np.isnan(sample)])) >= 2:
            boots.append(krippendorff.alpha(reliability_data=sample, level_of_measurement=level))
    lo, hi = np.quantile(boots, [0.025, 0.975]) if boots else (float("nan"), float("nan"))
    return alpha, float(lo), float(hi)


def agreement(judgements: pd.DataFrame, protocol: str, *, n_boot: int = 1000,
              rng: np.random.Generator) -> Agreement:
    """Inter-rater agreement: ordinal alpha over ratings of the same grid, or nominal alpha over
    choices in the same pair of grids (coded by which grid won, whatever side it was shown on)."""
    d = judgements[(judgements["protocol"] == protocol) & ~judgements["is_catch"].astype(bool)]
    d = d.drop_duplicates(["response_id", "grid"])
    if protocol == "rating":
        level = "ordinal"
        table = d.pivot_table(index="participant", columns="grid", values="rating", aggfunc="first")
    elif protocol == "pairwise":
        level = "nominal"
        rows = []
        for _, g in d.groupby("response_id"):
            grids = sorted(g["grid"])
            winner = g.loc[g["outcome"] == "win", "grid"]
            code = 0.0 if winner.empty else 1.0 + grids.index(winner.iloc[0])
            rows.append((g["participant"].iloc[0], "|".join(grids), code))
        table = pd.DataFrame(rows, columns=["participant", "unit", "code"]).pivot_table(
            index="participant", columns="unit", values="code", aggfunc="first")
    else:
        raise ValueError(f"agreement is defined here for rating and pairwise, not {protocol!r}")
    if table.empty:
        return Agreement(protocol, level, float("nan"), float("nan"), float("nan"), 0, 0)
    alpha, lo, hi = krippendorff_alpha(table, level, n_boot=n_boot, rng=rng)
    units = int(((~table.isna()).sum(axis=0) >= 2).sum())
    return Agreement(protocol, level, alpha, lo, hi, units, int(table.shape[0]))


@dataclass(frozen=True)
class SplitHalf:
    r: float  # mean correlation of condition means between random halves of the participants
    spearman_brown: float  # reliability of the full sample
    splits: int


def split_half(ratings: pd.DataFrame, *, splits: int = 200, rng: np.random.Generator) -> SplitHalf:
    """Split-half reliability of condition mean ratings (random participant halves, Spearman-Brown)."""
    people = ratings["participant"].unique()
    if len(people) < 4 or ratings["condition"].nunique() < 3:
        return SplitHalf(float("nan"), float("nan"), 0)
    rs = []
    for _ in range(splits):
        half = set(rng.permutation(people)[: len(people) // 2])
        a = ratings[ratings["participant"].isin(half)].groupby("condition")["rating"].mean()
        b = ratings[~ratings["participant"].isin(half)].groupby("condition")["rating"].mean()
        both = pd.concat([a, b], axis=1).dropna()
        if len(both) >= 3 and both.iloc[:, 0].std() > 0 and both.iloc[:, 1].std() > 0:
            rs.append(float(np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1]))
    if not rs:
        return SplitHalf(float("nan"), float("nan"), 0)
    r = float(np.mean(rs))
    return SplitHalf(r, 2 * r / (1 + r), len(rs))


# --- method x segmenter: mixed model ------------------------------------------------------------


@dataclass(frozen=True)
class ModelTerm:
    term: str
    estimate: float
    std_error: float
    pvalue: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class MixedModelResult:
    formula: str
    terms: list[ModelTerm]
    n: int
    participants: int
    references: int
    converged: bool


def method_segmenter_model(ratings: pd.DataFrame) -> MixedModelResult | None:
    """Two-factor analysis of ratings: ``rating ~ method * segmenter`` with a random intercept per
    participant and a variance component per reference (statsmodels MixedLM, REML).

    Needs at least two methods and two segmenters; returns None otherwise. A rating of a grid
    that several conditions produced enters once per condition, as in every per-condition table.
    """
    import warnings

    import statsmodels.formula.api as smf

    if ratings["method"].nunique() < 2 or ratings["segmenter"].nunique() < 2:
        return None
    df = ratings.assign(rating=ratings["rating"].astype(float)).reset_index(drop=True)
    formula = "rating ~ C(method) * C(segmenter)"
    model = smf.mixedlm(formula, df, groups=df["participant"], vc_formula={"reference": "0 + C(reference)"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit(reml=True, method="lbfgs")
    converged = bool(fit.converged) and not any("converge" in str(w.message).lower() for w in caught)
    ci = fit.conf_int()
    terms = [ModelTerm(name, float(fit.fe_params[name]), float(fit.bse_fe[name]), float(fit.pvalues[name]),
                       float(ci.loc[name, 0]), float(ci.loc[name, 1])) for name in fit.fe_params.index]
    return MixedModelResult(f"{formula} + (1 | participant) + (1 | reference)", terms, len(df),
                            int(df["participant"].nunique()), int(df["reference"].nunique()), converged)
