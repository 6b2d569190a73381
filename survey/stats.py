"""Preference statistics: pure functions over the tidy tables of :mod:`survey.export`.

Every function checks its input first (``_iv`` helpers), takes random generators
explicitly, and returns a frozen result object; the report only formats them.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

# --- exclusions ---------------------------------------------------------------------------


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


def _rating_iv(judgements: pd.DataFrame) -> pd.DataFrame:
    need = {"protocol", "is_catch", "participant", "reference", "condition", "rating"}
    missing = need - set(judgements.columns)
    if missing:
        raise ValueError(f"judgements lack {sorted(missing)}; use survey.export.tables()")
    r = judgements[(judgements["protocol"] == "rating") & ~judgements["is_catch"].astype(bool)]
    return r.assign(rating=r["rating"].astype(float))


def block_matrix(judgements: pd.DataFrame, block: tuple[str, ...] = ("reference",)) -> pd.DataFrame:
    """Mean rating per block x condition, complete blocks only (every condition rated)."""
    r = _rating_iv(judgements)
    m = r.pivot_table(index=list(block), columns="condition", values="rating", aggfunc="mean")
    return m.dropna()


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float
    pvalue: float
    kendalls_w: float
    n_blocks: int
    k: int
    block: tuple[str, ...]


def friedman(judgements: pd.DataFrame, block: tuple[str, ...] = ("reference",)) -> FriedmanResult:
    """Friedman test of rating differences between conditions, with Kendall's W = chi2 / (n (k - 1)).

    Blocks are ``block`` groups (default: references, averaging over participants; pass
    ``("participant", "reference")`` when every participant rated every condition of a
    reference). Only complete blocks enter; their number is reported.
    """
    m = block_matrix(judgements, block)
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


def pairwise_wilcoxon(judgements: pd.DataFrame, block: tuple[str, ...] = ("reference",)) -> list[PairedComparison]:
    """Wilcoxon signed-rank test for every pair of conditions over blocks rating both, Holm-corrected."""
    from statsmodels.stats.multitest import multipletests

    r = _rating_iv(judgements)
    m = r.pivot_table(index=list(block), columns="condition", values="rating", aggfunc="mean")
    rows = []
    for a, b in itertools.combinations(sorted(m.columns), 2):
        d = (m[a] - m[b]).dropna().to_numpy()
        nz = d[d != 0]
        if len(nz) < 1:
            rows.append((a, b, len(d), float(np.median(d)) if len(d) else float("nan"), float("nan"), 1.0, 0.0))
            continue
        res = stats.wilcoxon(d, zero_method="wilcox")
        ranks = stats.rankdata(np.abs(nz))
        rbc = float((ranks[nz > 0].sum() - ranks[nz < 0].sum()) / ranks.sum())
        rows.append((a, b, len(d), float(np.median(d)), float(res.statistic), float(res.pvalue), rbc))
    if not rows:
        return []
    holm = multipletests([x[5] for x in rows], method="holm")[1]
    return [PairedComparison(a, b, n, md, st, p, float(ph), rbc)
            for (a, b, n, md, st, p, rbc), ph in zip(rows, holm)]


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


def bradley_terry(wins: np.ndarray) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry log-strengths, centred to mean 0."""
    wins = np.asarray(wins, dtype=float)
    if wins.ndim != 2 or wins.shape[0] != wins.shape[1] or (wins < 0).any():
        raise ValueError("wins must be a square matrix of non-negative counts")
    k = wins.shape[0]
    res = optimize.minimize(_bt_negloglik, np.zeros(k), args=(wins,), jac=True, method="L-BFGS-B")
    if not res.success:
        raise RuntimeError(f"Bradley-Terry fit did not converge: {res.message}")
    return res.x - res.x.mean()


@dataclass(frozen=True)
class BTEstimate:
    condition: str
    strength: float  # log-strength, mean 0 over conditions
    ci_low: float
    ci_high: float
    rank: int  # 1 = best; conditions whose intervals overlap the better one share its rank


def bradley_terry_bootstrap(judgements: pd.DataFrame, *, n_boot: int = 500, confidence: float = 0.95,
                            rng: np.random.Generator) -> list[BTEstimate]:
    """BT strengths with participant-resampling percentile CIs and ranks with ties."""
    p = judgements[(judgements["protocol"] == "pairwise") & ~judgements["is_catch"].astype(bool)]
    if p.empty:
        return []
    conds = sorted(p["condition"].unique())
    by_participant = {pid: win_matrix(g).reindex(index=conds, columns=conds, fill_value=0.0).to_numpy()
                      for pid, g in p.groupby("participant")}
    mats = np.stack(list(by_participant.values()))
    est = bradley_terry(mats.sum(axis=0))
    boots = np.array([bradley_terry(mats[rng.integers(0, len(mats), len(mats))].sum(axis=0)) for _ in range(n_boot)])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha], axis=0)
    order = np.argsort(-est)
    ranks = np.empty(len(conds), dtype=int)
    rank = 1
    for pos, i in enumerate(order):
        if pos and lo[order[pos - 1]] > hi[i]:  # clearly below the previous one
            rank = pos + 1
        ranks[i] = rank
    return [BTEstimate(c, float(est[i]), float(lo[i]), float(hi[i]), int(ranks[i])) for i, c in enumerate(conds)]


# --- ranking protocol ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BestWorst:
    condition: str
    shown: int
    best: int
    worst: int
    score: float  # (best - worst) / shown, in [-1, 1]


def best_worst_scores(judgements: pd.DataFrame) -> list[BestWorst]:
    r = judgements[(judgements["protocol"] == "ranking") & ~judgements["is_catch"].astype(bool)]
    out = []
    for cond, g in r.groupby("condition", sort=True):
        shown, best, worst = len(g), int((g["outcome"] == "best").sum()), int((g["outcome"] == "worst").sum())
        out.append(BestWorst(cond, shown, best, worst, (best - worst) / shown))
    return out


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
