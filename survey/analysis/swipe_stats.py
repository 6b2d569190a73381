"""Swipe protocol statistics on the export's ``swipes`` and ``swipe_rounds`` tables. "pick" rows (a liked
product shown again to be picked) are ignored; check rows are never a condition's; unfinished rounds count as
they are. Rates are pooled (likes / products), as is their estimand (expected likes / expected products);
intervals: percentile bootstrap over participants, the same replicates for all quantities of a call.

Base rate: the choose phase stops at the first like, so a round's like share is biased upwards (a first swipe
that is a like counts 100 %). The stop depends only on answers given, so it is ignorable for the likelihood:
the MLE of a common like probability is likes / swipes pooled, the reference's like included (a random draw
too). When participants differ this estimates the like probability of the products shown (optional stopping:
E[likes] = E[sum of their probabilities]), a swipe-weighted rate under the participants' mean as choosy people
swipe more (``bench/swipe_validity.py``: true 0.190 and 0.210; pooled estimate 0.190 on average, naive
per-round mean 0.395). Lifts divide a rate weighted by judged products (people who like readily reach the
judge phase more often) by it: a random recommender's true lift was 1.06; compare conditions, or add a
random control condition.

Model: GEE, logit link, exchangeable working correlation within participant (a round, so its reference, is
nested in its participant; the catalog is fixed), bias-reduced (Mancl-DeRouen) sandwich covariance, t and F
tests with participants - 1 degrees of freedom; odds ratios are population-averaged. Chosen on null studies
of 40 participants x 4 rounds, 4 conditions, k = 5 (``bench/swipe_validity.py --compare-mixed 200
--compare-gee 1000``), false positives of the joint test at 0.05: statsmodels' mixed logistic model
(``BinomialBayesMixedGLM``, participant and reference intercepts) 0.35 by variational Bayes (SEs 0.63 of the
estimates' SD), 0.080 by MAP/Laplace (0.92; 1.1 s a fit); this GEE 0.045 (1.00; 0.05 s). Over 1,000 studies:
robust covariance 0.084 with chi2, 0.060 with F; bias-reduced 0.065 with chi2, 0.049 with F (contrasts, t:
0.049). ``converged``: the estimating equations hold at the estimates returned (:func:`gee_score`);
statsmodels' flag (``fitter_converged``) checks the score before its last working-correlation update, so it
says converged after one iteration that solved nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from numpy.random import Generator
from scipy import stats

from survey.analysis.bootstrap import ClusterResamples, resample_clusters
from survey.analysis.ratings import holm, wilcoxon_signed_rank

REQUIRED = ("participant", "round", "phase", "position", "condition", "method", "segmenter", "is_check", "liked")
PHASES = ("choose", "judge", "pick")
COV_TYPE = "bias_reduced"
MODEL_METHOD = f"GEE, logit link, exchangeable working correlation within participant, {COV_TYPE} robust SEs"


def _iv(swipes: pd.DataFrame) -> pd.DataFrame:
    """The swipes table checked, "pick" rows dropped, ``liked`` as float 0/1."""
    missing = sorted(set(REQUIRED) - set(swipes.columns if isinstance(swipes, pd.DataFrame) else ()))
    if missing:
        raise ValueError(f"swipes lacks the columns {missing}: pass the export's swipes table (a DataFrame)")
    if swipes.empty:
        raise ValueError("swipes is empty: there is nothing to analyse yet")
    bad = sorted(set(swipes["phase"].dropna()) - set(PHASES)) + (["<missing>"] if swipes["phase"].isna().any() else [])
    if bad:
        raise ValueError(f"phase must be one of {PHASES}, got {bad}")
    if swipes["liked"].isna().any():
        raise ValueError(f"{int(swipes['liked'].isna().sum())} rows have no answer (liked missing): pass answered ones")
    out = swipes[swipes["phase"] != "pick"].copy()
    out["liked"] = out["liked"].astype(bool).astype(np.float64)
    out["is_check"] = out["is_check"].fillna(False).astype(bool)
    return out


def _judged(s: pd.DataFrame) -> pd.DataFrame:
    """Judged non-check products (of a checked table); ValueError when there are none."""
    j = s[(s["phase"] == "judge") & ~s["is_check"]]
    if j.empty:
        raise ValueError("no judged products (judge-phase rows that are not checks): no round reached its set")
    if j["condition"].isna().any():
        raise ValueError("judged non-check rows without a condition; every recommended product needs one")
    return j


@dataclass(frozen=True)
class _Boot:
    ids: np.ndarray
    res: ClusterResamples | None
    confidence: float

    def sums(self, rows: pd.DataFrame, key: str, groups: list) -> tuple[np.ndarray, np.ndarray]:
        """Likes and products per group (rows) and participant (columns)."""
        at = (pd.Categorical(rows[key], categories=groups).codes, np.searchsorted(self.ids, rows["participant"]))
        likes, counts = np.zeros((2, len(groups), len(self.ids)))
        np.add.at(likes, at, rows["liked"].to_numpy())
        np.add.at(counts, at, 1.0)
        return likes, counts

    def replicates(self, likes: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
        """The pooled rate per group in every replicate (n_boot x groups; nan where one has no product)."""
        if self.res is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.res.weights @ likes.T) / (self.res.weights @ counts.T)

    def interval(self, reps: np.ndarray | None, width: int) -> tuple[list[float], list[float]]:
        """Percentile interval per column of ``reps`` (replicates without a value left out); nan without."""
        lo, hi = np.full((2, width), np.nan)
        ok = np.zeros(width, bool) if reps is None else np.isfinite(reps).any(axis=0)
        if reps is not None and ok.any():
            lo[ok], hi[ok] = np.nanquantile(reps[:, ok], [(1 - self.confidence) / 2, (1 + self.confidence) / 2], axis=0)
        return lo.tolist(), hi.tolist()


def _boot(swipes: pd.DataFrame, n_boot: int, rng: Generator, confidence: float):
    """The checked table and its :class:`_Boot` (participants, their replicates: None with one, confidence)."""
    if n_boot < 1 or not 0 < confidence < 1:
        raise ValueError(f"n_boot must be >= 1 and confidence in (0, 1), got {n_boot} and {confidence}")
    s = _iv(swipes)
    ids = np.unique(s["participant"].to_numpy())
    return s, _Boot(ids, resample_clusters(ids, n_boot=n_boot, rng=rng), confidence)


def _choose(s: pd.DataFrame, boot: _Boot) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The choose-phase rows, their likes and swipes per participant (1 x participants); ValueError without."""
    c = s[s["phase"] == "choose"].assign(_all="all")
    if c.empty:
        raise ValueError("no choose-phase rows: the base rate needs the products swiped before the reference")
    return c, *boot.sums(c, "_all", ["all"])


def _conditions(s: pd.DataFrame, boot: _Boot) -> tuple[pd.DataFrame, list[str], np.ndarray, np.ndarray]:
    """The judged non-check rows, their conditions (by name), likes and products per condition and participant."""
    j = _judged(s)
    conds = sorted(j["condition"].unique())
    return j, conds, *boot.sums(j, "condition", conds)


@dataclass(frozen=True)
class LikeRate:
    condition: str
    method: str
    segmenter: str
    likes: int
    n_products: int
    n_participants: int
    rate: float  # likes / products, pooled over participants
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class LikeRates:
    rates: tuple[LikeRate, ...]
    n_boot: int
    confidence: float


def like_rates(swipes: pd.DataFrame, *, n_boot: int = 2000, rng: Generator, confidence: float = 0.95) -> LikeRates:
    """Per condition (sorted by name), the like rate of its recommended (judged, non-check) products, pooled,
    with a participant-clustered percentile bootstrap CI."""
    s, boot = _boot(swipes, n_boot, rng, confidence)
    j, conds, likes, counts = _conditions(s, boot)
    lo, hi = boot.interval(boot.replicates(likes, counts), len(conds))
    names = j.groupby("condition")[["method", "segmenter"]].first().astype(str)
    out = []
    for g, c in enumerate(conds):
        k, n, people = int(likes[g].sum()), int(counts[g].sum()), int((counts[g] > 0).sum())
        out.append(LikeRate(c, names.at[c, "method"], names.at[c, "segmenter"], k, n, people, k / n, lo[g], hi[g]))
    return LikeRates(tuple(out), n_boot, confidence)


@dataclass(frozen=True)
class BaseRate:
    rate: float  # likes / swipes over all choose-phase rows: the MLE (see the module docstring)
    ci_low: float
    ci_high: float
    likes: int
    n_swipes: int
    n_rounds: int
    n_participants: int
    naive_round_mean: float  # mean of the rounds' like shares: biased upwards by the stopping rule, for contrast
    n_boot: int
    confidence: float


def base_rate(swipes: pd.DataFrame, *, n_boot: int = 2000, rng: Generator, confidence: float = 0.95) -> BaseRate:
    """The base like rate of random products: likes / swipes pooled over the choose phase (the reference's
    like included), with a participant-clustered percentile bootstrap CI; and the naive per-round mean."""
    s, boot = _boot(swipes, n_boot, rng, confidence)
    c, likes, counts = _choose(s, boot)
    lo, hi = boot.interval(boot.replicates(likes, counts), 1)
    k, n, people = int(likes.sum()), int(counts.sum()), int((counts > 0).sum())
    per_round = c.groupby(["participant", "round"])["liked"].mean()
    return BaseRate(k / n, lo[0], hi[0], k, n, len(per_round), people, float(per_round.mean()), n_boot, confidence)


@dataclass(frozen=True)
class Lift:
    condition: str
    like_rate: float
    ratio: float  # like rate / base rate
    ratio_ci_low: float
    ratio_ci_high: float
    difference: float  # like rate - base rate
    difference_ci_low: float
    difference_ci_high: float


@dataclass(frozen=True)
class Lifts:
    lifts: tuple[Lift, ...]
    base_rate: float
    n_boot: int
    confidence: float


def lifts(swipes: pd.DataFrame, *, n_boot: int = 2000, rng: Generator, confidence: float = 0.95) -> Lifts:
    """Per condition, its like rate over the base rate as a ratio and as a difference, with percentile CIs
    from the same participant replicates for both rates. See the module docstring on what a lift is not."""
    s, boot = _boot(swipes, n_boot, rng, confidence)
    _, conds, likes, counts = _conditions(s, boot)
    _, b_likes, b_counts = _choose(s, boot)
    reps, base_reps = boot.replicates(likes, counts), boot.replicates(b_likes, b_counts)
    base = float(b_likes.sum() / b_counts.sum())
    rate = (likes.sum(axis=1) / counts.sum(axis=1)).tolist()
    r_lo, r_hi = boot.interval(None if reps is None else reps / base_reps, len(conds))
    d_lo, d_hi = boot.interval(None if reps is None else reps - base_reps, len(conds))
    cols = zip(conds, rate, [r / base for r in rate], r_lo, r_hi, [r - base for r in rate], d_lo, d_hi, strict=True)
    return Lifts(tuple(Lift(*c) for c in cols), base, n_boot, confidence)


@dataclass(frozen=True)
class PositionRate:
    rank: int  # place among the set's recommended products (check rows left out), 1 = shown first
    likes: int
    n_products: int
    rate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class PositionRates:
    rates: tuple[PositionRate, ...]
    slope: float  # least-squares slope of the rate on the rank (per rank step); < 0: earlier liked more
    slope_ci_low: float
    slope_ci_high: float
    n_boot: int
    confidence: float


def _ranks(j: pd.DataFrame) -> pd.Series:
    """Each judged product's rank among its set's recommended products, by display position."""
    if j["position"].isna().any():
        raise ValueError("judged rows without a position; the judge phase needs its display positions")
    order = j.sort_values(["participant", "round", "position"], kind="stable")
    return order.groupby(["participant", "round"]).cumcount().add(1).reindex(j.index)


def position_rates(
    swipes: pd.DataFrame, *, n_boot: int = 2000, rng: Generator, confidence: float = 0.95
) -> PositionRates:
    """Like rate by rank 1..k of the recommended products (judged, non-check) with participant-clustered
    CIs, and the rate's least-squares slope on the rank with its CI (the order's information). The rank is the
    place among the set's recommended products in display order: a check inserted before a product shifts
    its display position, not its rank, so the rank is the condition's own order of similarity."""
    s, boot = _boot(swipes, n_boot, rng, confidence)
    j = _judged(s).pipe(lambda d: d.assign(_rank=_ranks(d)))
    ranks = sorted(int(r) for r in j["_rank"].unique())
    likes, counts = boot.sums(j, "_rank", ranks)
    rate = likes.sum(axis=1) / counts.sum(axis=1)
    reps = boot.replicates(likes, counts)
    lo, hi = boot.interval(reps, len(ranks))
    x = np.asarray(ranks, dtype=float) - np.mean(ranks)
    w = x / max(x @ x, 1e-300)  # least-squares slope weights (0 with one rank)
    c_lo, c_hi = boot.interval(None if reps is None else (reps @ w)[:, None], 1)
    k, n = likes.sum(axis=1).astype(int).tolist(), counts.sum(axis=1).astype(int).tolist()
    out = tuple(PositionRate(r, k[g], n[g], float(rate[g]), lo[g], hi[g]) for g, r in enumerate(ranks))
    return PositionRates(out, float(rate @ w), c_lo[0], c_hi[0], n_boot, confidence)


@dataclass(frozen=True)
class OddsRatio:
    condition: str  # against the model's reference level
    log_odds_ratio: float
    std_error: float  # robust (sandwich, bias-reduced)
    odds_ratio: float
    ci_low: float  # 95 %, exp of log OR -/+ t(participants - 1) quantile x std_error
    ci_high: float
    pvalue: float  # two-sided, t with participants - 1 degrees of freedom


@dataclass(frozen=True)
class LikeModel:
    formula: str  # exactly the formula fitted
    method: str
    reference: str
    odds_ratios: tuple[OddsRatio, ...]
    wald_chi2: float  # joint Wald test that every condition's odds ratio is 1
    wald_df: int
    wald_df_denominator: int  # participants - 1: p from F(wald_df, this) at wald_chi2 / wald_df
    wald_pvalue: float
    working_correlation: float  # exchangeable, within participant
    n_obs: int
    n_clusters: int
    converged: bool  # the estimating equations hold at the estimates (score_norm < statsmodels' tolerance)
    fitter_converged: bool  # statsmodels' flag (the score before its last step), see the module docstring
    iterations: int
    score_norm: float  # of the estimating equations at the estimates and the final working correlation


def _model_rows(swipes: pd.DataFrame, reference: str | None) -> tuple[pd.DataFrame, str]:
    """Judged non-check rows and the reference level; ValueError for what the model cannot fit."""
    j = _judged(_iv(swipes))
    conds = sorted(j["condition"].unique())
    if len(conds) < 2 or j["participant"].nunique() < 2:
        n = j["participant"].nunique()
        raise ValueError(f"the model needs 2 conditions and 2 participants; judged: {conds} by {n} participants")
    reference = conds[0] if reference is None else reference
    if reference not in conds:
        raise ValueError(f"reference {reference!r} is not among the judged conditions {conds}")
    rate = j.groupby("condition")["liked"].mean()
    separated = sorted(rate[(rate == 0) | (rate == 1)].index)
    if separated:
        why = "their odds ratios are infinite; report their rates and leave them out (or collect more answers)"
        raise ValueError(f"{separated} have no likes or only likes: {why}")
    return j.reset_index(drop=True), reference


def like_model(swipes: pd.DataFrame, *, reference: str | None = None, maxiter: int = 100) -> LikeModel:
    """``liked ~ condition`` for judged non-check products by GEE (see the module docstring): odds ratios
    against ``reference`` (default: the first condition by name) with 95 % CIs and p-values, the joint Wald
    test of no condition differences, and whether the estimating equations were solved."""
    rows, reference = _model_rows(swipes, reference)
    term = "C(condition, Treatment(reference='{}'))".format(reference.replace("\\", "\\\\").replace("'", "\\'"))
    formula = f"liked ~ {term}"
    family, corr = sm.families.Binomial(), sm.cov_struct.Exchangeable()
    # eval_env={}: the formula sees the data and patsy's builtins only, never this module's names
    model = smf.gee(formula, "participant", rows, family=family, cov_struct=corr, eval_env={}, missing="raise")
    fit = model.fit(maxiter=maxiter, cov_type=COV_TYPE)
    idx = [i for i, n in enumerate(model.exog_names) if n.startswith(term)]
    levels = [model.exog_names[i][len(term) + len("[T.") : -1] for i in idx]
    b, cov = np.asarray(fit.params)[idx], np.asarray(fit.cov_params())[np.ix_(idx, idx)]
    se, dfd = np.sqrt(np.diag(cov)), int(rows["participant"].nunique()) - 1
    q, p = stats.t.ppf(0.975, dfd), 2 * stats.t.sf(np.abs(b / se), dfd)
    cols = np.column_stack([b, se, np.exp(b), np.exp(b - q * se), np.exp(b + q * se), p]).tolist()
    ors = tuple(OddsRatio(c, *v) for c, v in zip(levels, cols, strict=True))
    chi2 = float(b @ np.linalg.solve(cov, b))
    wald = (chi2, len(idx), dfd, float(stats.f.sf(chi2 / len(idx), len(idx), dfd)))
    rho = float(np.ravel(fit.cov_struct.dep_params)[0])
    score = float(np.linalg.norm(gee_score(model.exog, model.endog, model.groups, np.asarray(fit.params), rho)))
    convergence = (score < fit.ctol, bool(fit.converged), len(fit.fit_history["params"]), score)
    return LikeModel(formula, MODEL_METHOD, reference, ors, *wald, rho, int(fit.nobs), dfd + 1, *convergence)


def gee_score(x: np.ndarray, y: np.ndarray, groups: np.ndarray, beta: np.ndarray, rho: float) -> np.ndarray:
    """The GEE estimating equations of a logit model with exchangeable working correlation ``rho`` within
    ``groups`` at ``beta``: the sum over groups of D' V^-1 (y - mu), scale left out (as statsmodels). V^-1 by
    Sherman-Morrison: R^-1 z = (z - rho / (1 - rho + n rho) sum(z)) / (1 - rho) in a group of size n."""
    mu = 1 / (1 + np.exp(-(x @ beta)))
    sd = np.sqrt(mu * (1 - mu))
    z = (y - mu) / sd
    _, g, n = np.unique(groups, return_inverse=True, return_counts=True)
    c = rho / (1 - rho + n * rho)
    return x.T @ (sd * (z - c[g] * np.bincount(g, weights=z)[g]) / (1 - rho))


@dataclass(frozen=True)
class PairedLikeComparison:
    a: str
    b: str
    n_participants: int  # who judged both
    rate_a: float  # mean of those participants' like rates
    rate_b: float
    difference: float  # mean of the per-participant differences a - b
    ci_low: float  # participant bootstrap of the difference (nan unless asked for)
    ci_high: float
    statistic: float  # Wilcoxon signed-rank, min(R+, R-), zeros dropped
    pvalue: float
    pvalue_holm: float  # over every pair
    rank_biserial: float  # matched-pairs effect size in [-1, 1]; > 0: a liked more


def _pair(both: pd.DataFrame, n_boot: int, rng: Generator | None, confidence: float) -> PairedLikeComparison:
    """One pair's fields before Holm, from the two columns of per-participant rates ``both``: the test, the
    rank-biserial effect size, the bootstrap CI of the mean difference."""
    a, b = both.columns
    d = (both[a] - both[b]).to_numpy()
    stat, p = wilcoxon_signed_rank(d) if d.size else (np.nan, np.nan)
    lo = hi = np.nan
    if n_boot and rng is not None and d.size >= 2:
        means = rng.multinomial(d.size, np.full(d.size, 1 / d.size), size=n_boot) @ d / d.size
        lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2]).tolist()
    nz = d[d != 0]
    r = stats.rankdata(np.abs(nz))
    rb = float((r[nz > 0].sum() - r[nz < 0].sum()) / r.sum()) if nz.size else np.nan
    rate_a, rate_b = both.mean().tolist()  # the same participants: their difference is the mean difference
    return PairedLikeComparison(a, b, len(d), rate_a, rate_b, rate_a - rate_b, lo, hi, stat, p, np.nan, rb)


def paired_comparisons(
    swipes: pd.DataFrame, *, n_boot: int = 0, rng: Generator | None = None, confidence: float = 0.95
) -> tuple[PairedLikeComparison, ...]:
    """Every pair of conditions: each participant's like rate per condition (judged non-check products),
    the Wilcoxon signed-rank test over participants who judged both (``scipy.stats.wilcoxon`` with
    ``zero_method="wilcox"``, through :func:`survey.analysis.ratings.wilcoxon_signed_rank`), Holm-corrected
    over the pairs; with ``n_boot`` > 0 (and ``rng``), a participant bootstrap CI of the mean difference."""
    if n_boot < 0 or (n_boot > 0 and rng is None):
        raise ValueError(f"n_boot must be 0 (no intervals) or > 0 with an rng, got n_boot={n_boot}, rng={rng}")
    j = _judged(_iv(swipes))
    per = j.pivot_table(index="participant", columns="condition", values="liked", aggfunc="mean")
    rows = [_pair(per[[a, b]].dropna(), n_boot, rng, confidence) for a, b in itertools.combinations(per.columns, 2)]
    p = np.array([r.pvalue for r in rows], dtype=float)
    adjusted = np.full(p.size, np.nan)
    adjusted[np.isfinite(p)] = holm(p[np.isfinite(p)])
    return tuple(replace(r, pvalue_holm=float(adjusted[i])) for i, r in enumerate(rows))


@dataclass(frozen=True)
class Correlation:
    rho: float | None  # Spearman; None with fewer than 3 pairs or a constant variable
    pvalue: float | None
    n: int


def _spearman(x: np.ndarray, y: np.ndarray) -> Correlation:
    """Spearman's rho of paired values; None where it says nothing (fewer than 3 pairs, a constant)."""
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(None, None, int(x.size))
    res = stats.spearmanr(x, y)
    return Correlation(float(res.statistic), float(res.pvalue), int(x.size))


def rating_agreement(swipe_rounds: pd.DataFrame, swipes: pd.DataFrame) -> Correlation:
    """Spearman correlation between each judged round's like share (its non-check products) and its
    similarity rating; ``rho`` None when fewer than 3 rounds are rated (e.g. no ratings collected)."""
    need = {"participant", "round", "outcome", "rating"}
    if not isinstance(swipe_rounds, pd.DataFrame) or need - set(swipe_rounds.columns):
        raise ValueError(f"swipe_rounds must be the export's swipe_rounds table with columns {sorted(need)}")
    rated = swipe_rounds[(swipe_rounds["outcome"] == "judged") & swipe_rounds["rating"].notna()]
    if rated.empty:
        return Correlation(None, None, 0)
    share = _judged(_iv(swipes)).groupby(["participant", "round"])["liked"].mean().rename("share")
    both = rated.join(share, on=["participant", "round"], how="inner")
    return _spearman(both["share"].to_numpy(float), both["rating"].to_numpy(float))


def like_vs_objective(like_rates: LikeRates, recall_at_5: Mapping[str, float]) -> Correlation:
    """Spearman correlation over the conditions in both between the like rate and an objective metric
    (recall@5 per condition name); ``rho`` None with fewer than 3 such conditions."""
    rate = {r.condition: r.rate for r in like_rates.rates}
    common = [c for c in rate if c in recall_at_5]
    if not common:
        raise ValueError(f"no condition in both: like rates have {list(rate)}, recall_at_5 has {sorted(recall_at_5)}")
    return _spearman(np.array([rate[c] for c in common]), np.array([recall_at_5[c] for c in common], dtype=float))
