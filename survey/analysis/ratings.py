"""Rating protocol (1-7 scale): Friedman and pairwise Wilcoxon tests with Holm correction, precision@k from
ticked items, per-rater z-scores and rating distributions."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from survey.analysis.bootstrap import ClusterResamples, cluster_bootstrap_mean_ci, resampled_mean_ci
from survey.analysis.conditions import condition_resamples, resamples_of


def _rating_iv(judgements: pd.DataFrame, value: str = "rating") -> pd.DataFrame:
    """Rating answers without attention checks, ``value`` as float. Takes the judgements table, or
    the tidy ratings table (:func:`survey.analysis.conditions.ratings_from_judgements`, already filtered)."""
    need = {"participant", "reference", "condition", value}
    missing = need - set(judgements.columns)
    if missing:
        raise ValueError(f"judgements lack {sorted(missing)}; use survey.study.export.tables()")
    r = judgements
    if "protocol" in r.columns:
        r = r[r["protocol"] == "rating"]
    if "is_catch" in r.columns:
        r = r[~r["is_catch"].astype(bool)]
    return r.assign(**{value: r[value].astype(float)})


def block_matrix(
    judgements: pd.DataFrame, block: tuple[str, ...] = ("reference",), *, value: str = "rating"
) -> pd.DataFrame:
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


def friedman(
    judgements: pd.DataFrame, block: tuple[str, ...] = ("reference",), *, value: str = "rating"
) -> FriedmanResult:
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
    return [
        PairedComparison(a, b, n, md, st, p, float(ph), rbc)
        for (a, b, n, md, st, p, rbc), ph in zip(rows, adjusted, strict=True)
    ]


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
    r = _rating_iv(judgements)
    if "ticks" not in r.columns:
        raise ValueError("judgements lack 'ticks'; use survey.study.export.tables()")
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
        raise ValueError("ratings lack 'response_id'; use survey.analysis.conditions.ratings_from_judgements()")
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


def zscored_analysis(
    ratings: pd.DataFrame,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator,
    resamples: Mapping[str, ClusterResamples | None] | None = None,
) -> ZScoreResult:
    """Condition means of per-rater z-scores with participant-clustered bootstrap CIs, and the
    Friedman test (reference blocks) on the z-scores. The replicates are
    :func:`survey.analysis.conditions.condition_resamples` drawn from ``rng``, or ``resamples``
    when given (e.g. those of the condition means: drawing them once halves the bootstrap time)."""
    z = zscore_ratings(ratings)
    if resamples is None:
        resamples = condition_resamples(z, n_boot=n_boot, rng=rng)
    out = []
    for (cond, method, seg), g in z.groupby(["condition", "method", "segmenter"], sort=True):
        lo, hi = resampled_mean_ci(
            g["z"].to_numpy(), g["participant"].to_numpy(), resamples_of(resamples, cond, n_boot), confidence=confidence
        )
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
