"""Method x segmenter: a linear mixed model of the ratings with crossed random intercepts for
participants and references,

    rating ~ C(method) * C(segmenter) + (1 | participant) + (1 | reference),

fitted by REML with a solver written for exactly this structure (:func:`fit_crossed_intercepts`).

Why a solver of our own: statsmodels' MixedLM fits crossed effects as one group with two
variance components, which makes the random-effects block dense (participants + references
square). Measured on this project's busy 2-core machine (4 conditions, 40 references, 12 answers
per participant), its REML fit took 3.9 s at 1,200 answers and 41 s at 4,800, growing faster than
the data, where this one takes under 0.1 s at both and about 0.15 s at 96,000 answers (0.3 s for
:func:`method_segmenter_model` with its checks and the ordinal model); and the old statsmodels
formulation with ``lbfgs`` stopped off the optimum on the demo study (log-likelihood -1149.7 where the
optimum is -921.4; issue 12). Here the fixed effects are profiled out and the REML criterion is evaluated
exactly from sufficient statistics: the participant block of ``I + L'Z'ZL`` is diagonal, so it is
eliminated by a Schur complement onto the small reference block. Participants with the same number
of answers share one diagonal value, so their contributions are summed once beforehand and each
evaluation costs a few (references x references) operations, whatever the number of answers.

Convergence is not assumed, and it is judged at the optimum, not by the optimisers' messages: BFGS
(central-difference gradient) and Nelder-Mead minimise the criterion from different starts, and the
fit counts as converged when their REML log-likelihoods agree within :data:`LOGLIK_TOLERANCE` and the
criterion's central-difference gradient at the estimate is below :data:`GRADIENT_TOLERANCE`. BFGS
often stops with "precision loss" at a correct optimum: on the Penicillin data (24 plates x 6
samples, lme4's documentation) it does so at the published REML estimates, with the two optimisers
1e-10 apart in log-likelihood and a gradient of about 1e-7 (issue 23); requiring both to report
success had called that fit "not converged". BFGS rather than L-BFGS-B:
scipy's L-BFGS-B spent 5 ms per call of its compiled core with multithreaded OpenBLAS on this
2-core machine (0.25 s of a profiled 0.53 s fit at 96,000 answers; the fit took 0.44 s, 0.16 s with
one OpenBLAS thread), where BFGS works in plain numpy on the two parameters. Every warning raised
while fitting is kept in the result.

Shared grids: a grid that several conditions produced is one answer, entered once. Its fixed-effect
design row is the mean of the producing conditions' rows (multiple membership), i.e. its expected
rating is the mean of those conditions' expected ratings.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse

from similarity.errors import UserError
from survey.analysis.ordinal import OrdinalResult, proportional_odds
from survey.analysis.wald import WaldTerm, wald_terms

FIXED = "C(method) * C(segmenter)"
FORMULA = f"rating ~ {FIXED} + (1 | participant) + (1 | reference)"
ORDINAL_FORMULA = f"rating (ordered categories) ~ {FIXED}, cumulative logit, proportional odds"
LOGLIK_TOLERANCE = 1e-3  # REML log-likelihood units: two optimisers further apart than this = not converged
# the criterion per answer (-2 REML log-likelihood / n) against the relative standard deviations: a central-
# difference gradient above this at the estimate = not converged (about 1e-7 at the optimum of the Penicillin
# data; 4e-4 to 3e-3 there with one relative standard deviation 1 % off the optimum)
GRADIENT_TOLERANCE = 1e-4
_GRADIENT_STEP = 1e-5
SHARED_GRIDS = (
    "each answer entered once; a grid produced by several conditions has as fixed-effect design row the mean "
    "of those conditions' rows (multiple membership: its expected rating is the mean of their expected ratings)"
)
# (name, start: relative standard deviations participant/residual and reference/residual, options)
_OPTIMIZERS: tuple[tuple[str, tuple[float, float], dict], ...] = (
    ("BFGS", (1.0, 1.0), {"gtol": 1e-7, "maxiter": 500}),
    ("Nelder-Mead", (0.3, 0.6), {"xatol": 1e-7, "fatol": 1e-13, "maxiter": 2000}),
)
_DENSE_LIMIT = 4_000_000  # answer-count classes x references^2 above which the reference block is summed per call


class MixedModelError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class OptimizerRun:
    """One optimiser's minimisation of the REML criterion: where it started (relative standard deviations
    participant/residual and reference/residual), the REML log-likelihood it reached, whether it
    reported success."""

    optimizer: str
    start: tuple[float, float]
    loglik: float
    success: bool
    evaluations: int
    message: str


@dataclass(frozen=True)
class CrossedFit:
    """REML fit of ``y = X b + u_participant + u_reference + e`` (see :func:`fit_crossed_intercepts`)."""

    beta: np.ndarray
    cov: np.ndarray  # covariance of beta: residual variance x (X' V^-1 X)^-1 at the REML estimate
    var_participant: float
    var_reference: float
    var_residual: float
    loglik: float  # REML log-likelihood (the best optimiser's)
    runs: tuple[OptimizerRun, ...]
    gradient: float  # largest central-difference gradient of the criterion per answer at the estimate
    converged: bool  # optimisers agree within LOGLIK_TOLERANCE and gradient <= GRADIENT_TOLERANCE
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class MixedModelResult:
    formula: str  # the model fitted
    terms: list[WaldTerm]  # fixed effects: estimate, SE, Wald z test, 95% CI
    n: int  # answers, each entered once (before issue 12: rating rows, now ``rating_rows``)
    participants: int
    references: int
    converged: bool  # the optimisers agree on the log-likelihood and the gradient at the estimate is near zero
    var_participant: float
    var_reference: float
    var_residual: float
    loglik: float  # REML log-likelihood
    optimizers: tuple[OptimizerRun, ...]
    loglik_tolerance: float
    gradient: float  # largest |d criterion / d relative SD| at the estimate (criterion: -2 REML loglik per answer)
    gradient_tolerance: float
    warnings: tuple[str, ...]  # every warning raised while fitting either model, as "Category: message"
    rating_rows: int  # rows of the per-condition ratings table (an answer on a shared grid counts per condition)
    shared_answers: int  # answers on a grid that several conditions produced
    shared_grids: str  # how those answers enter the model
    ordinal: OrdinalResult | None  # robustness check: proportional odds, participant-clustered SEs
    ordinal_failure: str | None  # why ``ordinal`` is None
    test: str = "Wald z (normal reference), 95% CI estimate +/- 1.96 SE"


# --- the REML criterion for two crossed random intercepts ----------------------------------------------


class _Crossed:
    """Sufficient statistics of ``y = X b + Zp up + Zr ur + e`` with up ~ N(0, sp^2 s2 I), ur ~ N(0, sr^2 s2 I),
    e ~ N(0, s2 I), and the profiled REML criterion as a function of (sp, sr).

    With W = [X, y], A = I + L Z'Z L (L = diag(sp I, sr I)) and V = I + Z L L Z':
    W'V^-1 W = W'W - (L Z'W)' A^-1 (L Z'W) and |V| = |A|; A's participant block is diagonal
    (1 + sp^2 n_i), so A^-1 is applied by eliminating it onto the reference block (Schur complement S).
    The criterion depends on sp^2 and sr^2 only, so the optimisers search all of R^2 and the
    boundary sp = 0 or sr = 0 is an ordinary point.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, participant: np.ndarray, reference: np.ndarray):
        n, self.p = X.shape
        self.n = n
        W = np.column_stack([X, y])
        P, R = int(participant.max()) + 1, int(reference.max()) + 1
        Zp = sparse.csr_matrix((np.ones(n), (np.arange(n), participant)), shape=(n, P))
        Zr = sparse.csr_matrix((np.ones(n), (np.arange(n), reference)), shape=(n, R))
        self.WtW = W.T @ W
        self.Gr = np.asarray(Zr.T @ W)  # reference sums of W
        self.n_ref = np.bincount(reference, minlength=R).astype(float)
        Gp = np.asarray(Zp.T @ W)  # participant sums of W
        N = sparse.csr_matrix(Zp.T @ Zr)  # answers per participant x reference
        n_part = np.bincount(participant, minlength=P)
        counts, cls = np.unique(n_part, return_inverse=True)  # participants with equal counts share 1 + sp^2 n_i
        self.counts = counts.astype(float)
        self.members = np.bincount(cls).astype(float)
        self.H = np.stack([Gp[cls == c].T @ Gp[cls == c] for c in range(len(counts))])
        self.Lc = np.stack([np.asarray(N[cls == c].T @ Gp[cls == c]) for c in range(len(counts))])
        if len(counts) * R * R <= _DENSE_LIMIT:
            self.K: np.ndarray | None = np.stack([(N[cls == c].T @ N[cls == c]).toarray() for c in range(len(counts))])
        else:  # many references: N' diag(1/a) N is formed per call from the sparse counts
            self.K, self.N, self.n_part = None, N, n_part.astype(float)

    def _solve(self, s: np.ndarray) -> tuple[float, np.ndarray]:
        """log|A| and the Cholesky factor of W'V^-1 W at relative standard deviations ``s``."""
        sp2, sr2 = float(s[0]) ** 2, float(s[1]) ** 2
        inv_a = 1.0 / (1.0 + sp2 * self.counts)
        logdet = float(self.members @ np.log1p(sp2 * self.counts))
        M = self.WtW - sp2 * np.einsum("c,cij->ij", inv_a, self.H)
        if sr2 > 0:
            if self.K is not None:
                K = np.einsum("c,cij->ij", inv_a, self.K)
            else:
                K = (self.N.T @ self.N.multiply((1.0 / (1.0 + sp2 * self.n_part))[:, None])).toarray()
            S = np.diag(1.0 + sr2 * self.n_ref) - sp2 * sr2 * K
            c = np.sqrt(sr2) * (self.Gr - sp2 * np.einsum("c,cij->ij", inv_a, self.Lc))
            cs = linalg.cho_factor(S, lower=True, check_finite=False)
            logdet += 2.0 * float(np.log(np.diag(cs[0])).sum())
            M = M - c.T @ linalg.cho_solve(cs, c, check_finite=False)
        return logdet, linalg.cholesky(M, lower=True, check_finite=False)

    def deviance(self, s: np.ndarray) -> float:
        """-2 x the REML log-likelihood at ``s`` (fixed effects and residual variance profiled out)."""
        logdet, C = self._solve(s)
        p, df = self.p, self.n - self.p
        rss = C[p, p] ** 2  # r'V^-1 r at the GLS estimate
        return logdet + 2.0 * float(np.log(np.diag(C)[:p]).sum()) + df * (1.0 + math.log(2 * math.pi * rss / df))

    def estimates(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """GLS fixed effects, their covariance and the REML residual variance at ``s``."""
        _, C = self._solve(s)
        p = self.p
        Cx = C[:p, :p]
        beta = linalg.solve_triangular(Cx.T, C[p, :p], lower=False)
        s2 = C[p, p] ** 2 / (self.n - p)
        inv = linalg.cho_solve((Cx, True), np.eye(p))
        return beta, s2 * inv, float(s2)


def fit_crossed_intercepts(X: np.ndarray, y: np.ndarray, participant: np.ndarray, reference: np.ndarray) -> CrossedFit:
    """REML fit of ``y = X b + u_participant + u_reference + e``, two crossed random intercepts.

    ``participant`` and ``reference`` are integer codes 0..P-1 and 0..R-1 (every code used). BFGS
    starts at relative standard deviations (1, 1), Nelder-Mead at (0.3, 0.6); the estimate is the
    better of the two, and ``converged`` says whether they agree within :data:`LOGLIK_TOLERANCE` and the
    gradient at the estimate is within :data:`GRADIENT_TOLERANCE`, whatever the optimisers' messages say.
    Warnings raised while fitting are recorded, not filtered.
    """
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
        warnings.simplefilter("always")
        model = _Crossed(np.asarray(X, float), np.asarray(y, float), participant, reference)
        f = lambda s: model.deviance(s) / model.n  # per answer: the optimisers' tolerances are then scale-free
        runs, points = [], []
        for name, start, options in _OPTIMIZERS:
            jac = "3-point" if name == "BFGS" else None  # central differences: two parameters, cheap calls
            res = optimize.minimize(f, np.array(start), method=name, jac=jac, options=options)
            loglik = -0.5 * model.deviance(res.x)
            runs.append(OptimizerRun(name, start, loglik, bool(res.success), int(res.nfev), str(res.message)))
            points.append(np.abs(res.x))
        best = max(range(len(runs)), key=lambda i: runs[i].loglik)
        beta, cov, s2 = model.estimates(points[best])
        gradient = criterion_gradient(f, points[best])
    agree = max(r.loglik for r in runs) - min(r.loglik for r in runs) <= LOGLIK_TOLERANCE
    return CrossedFit(
        beta,
        cov,
        float(points[best][0] ** 2 * s2),
        float(points[best][1] ** 2 * s2),
        s2,
        runs[best].loglik,
        tuple(runs),
        gradient,
        agree and gradient <= GRADIENT_TOLERANCE,
        tuple(f"{w.category.__name__}: {w.message}" for w in caught),
    )


def criterion_gradient(f, s: np.ndarray) -> float:
    """The largest absolute central-difference derivative of ``f`` at ``s`` (step :data:`_GRADIENT_STEP`
    relative to each coordinate, at least that absolute)."""
    h = _GRADIENT_STEP * np.maximum(1.0, np.abs(s))
    return max(abs(f(s + h[i] * e) - f(s - h[i] * e)) / (2 * h[i]) for i, e in enumerate(np.eye(len(s))))


# --- the method x segmenter model of a ratings table ---------------------------------------------------


def _iv(ratings: pd.DataFrame) -> None:
    need = {"response_id", "participant", "reference", "rating", "method", "segmenter", "condition"}
    missing = need - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings table lacks column(s) {sorted(missing)}; build it with ratings_table()")
    if ratings["rating"].isna().any():
        raise ValueError("ratings table has missing ratings; ratings_from_judgements() keeps only answered ones")


def _design(ratings: pd.DataFrame) -> tuple[np.ndarray, list[str], pd.DataFrame, np.ndarray]:
    """Fixed-effect design: one row per answer, the mean of its producing conditions' treatment-coded rows.
    Returns X, the term names, the answers (response_id, participant, reference, rating) and each
    answer's number of producing conditions."""
    from patsy import dmatrix

    cells = ratings[["condition", "method", "segmenter"]].drop_duplicates("condition").sort_values("condition")
    Xc = dmatrix(FIXED, cells, return_type="dataframe")
    ans, a_idx = np.unique(ratings["response_id"].to_numpy(), return_inverse=True)
    c_idx = pd.Index(cells["condition"]).get_indexer(ratings["condition"])
    k = np.bincount(a_idx, minlength=len(ans))
    weights = sparse.csr_matrix((1.0 / k[a_idx], (a_idx, c_idx)), shape=(len(ans), len(cells)))
    X = np.asarray(weights @ Xc.to_numpy())
    first = ratings.drop_duplicates("response_id").set_index("response_id").loc[ans]
    if (ratings.groupby("response_id")[["participant", "reference", "rating"]].nunique() > 1).any().any():
        raise ValueError("a response_id has several participants, references or ratings; the table is not tidy")
    return X, list(Xc.columns), first[["participant", "reference", "rating"]].reset_index(), k


def _unexplained(X: np.ndarray, y: np.ndarray, codes: np.ndarray | None) -> float:
    """Residual sum of squares of ``y`` on ``X`` plus, with ``codes``, one fixed intercept per code (by
    demeaning within codes: Frisch-Waugh-Lovell)."""
    if codes is not None:
        n_code = np.bincount(codes).astype(float)
        demean = lambda a: a - (np.stack([np.bincount(codes, col) for col in a.T], axis=1) / n_code[:, None])[codes]
        X, y = demean(X), demean(y[:, None])[:, 0]
    r = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    return float(r @ r)


def method_segmenter_model(ratings: pd.DataFrame) -> MixedModelResult | None:
    """``rating ~ C(method) * C(segmenter) + (1 | participant) + (1 | reference)`` by REML, each answer
    once (see :data:`SHARED_GRIDS`), treatment coding with the alphabetically first method and
    segmenter as reference levels; tests are Wald z on the GLS covariance at the REML estimate.

    Returns None with fewer than two methods or two segmenters (no interaction to estimate). Raises
    :class:`MixedModelError` when the answers cannot estimate the model: fewer than two participants
    or references, conditions whose effects no answer separates, or no rating variation left within
    combinations, participants or references (the REML optimum would have residual variance 0).
    """
    _iv(ratings)
    if ratings["method"].nunique() < 2 or ratings["segmenter"].nunique() < 2:
        return None
    X, names, answers, k = _design(ratings)
    participant = pd.factorize(answers["participant"])[0]
    reference = pd.factorize(answers["reference"])[0]
    P, R = int(participant.max()) + 1, int(reference.max()) + 1
    if P < 2 or R < 2:
        raise MixedModelError(
            f"the mixed model needs answers from at least two participants and on at least two references "
            f"(has {P} and {R}); collect more ratings before reporting it"
        )
    _require_separable(ratings, X, answers["response_id"][k == 1])
    y = answers["rating"].to_numpy(float)
    _require_residual_variance(X, y, participant, reference)
    fit = fit_crossed_intercepts(X, y, participant, reference)
    terms = wald_terms(names, fit.beta, np.sqrt(np.diag(fit.cov)))
    ordinal, failure, ordinal_warnings = _proportional_odds(X, y, participant, names)
    return MixedModelResult(
        formula=FORMULA,
        terms=terms,
        n=len(answers),
        participants=P,
        references=R,
        converged=fit.converged,
        var_participant=fit.var_participant,
        var_reference=fit.var_reference,
        var_residual=fit.var_residual,
        loglik=fit.loglik,
        optimizers=fit.runs,
        loglik_tolerance=LOGLIK_TOLERANCE,
        gradient=fit.gradient,
        gradient_tolerance=GRADIENT_TOLERANCE,
        warnings=fit.warnings + ordinal_warnings,
        rating_rows=len(ratings),
        shared_answers=int((k > 1).sum()),
        shared_grids=SHARED_GRIDS,
        ordinal=ordinal,
        ordinal_failure=failure,
    )


def _require_separable(ratings: pd.DataFrame, X: np.ndarray, own_answers: pd.Series) -> None:
    """Raise :class:`MixedModelError` unless the design ``X`` has full rank; the message names the
    combinations with no grid of their own (``own_answers``: the answers to a grid one condition produced)."""
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        own_rows = ratings[ratings["response_id"].isin(own_answers)]
        own = set(zip(own_rows["method"], own_rows["segmenter"], strict=True))
        combos = {(m, g) for m in ratings["method"].unique() for g in ratings["segmenter"].unique()}
        lacking = ", ".join(f"{m}/{g}" for m, g in sorted(combos - own)) or "none"
        raise MixedModelError(
            f"the answers cannot separate the {X.shape[1]} method x segmenter effects (rank {rank}); "
            f"combinations rated on no grid of their own: {lacking}. Collect ratings of every method x "
            "segmenter combination"
        )


def _require_residual_variance(X: np.ndarray, y: np.ndarray, participant: np.ndarray, reference: np.ndarray) -> None:
    """Raise :class:`MixedModelError` when the ratings ``y`` do not vary within combinations, participants
    or references beyond the fixed effects: then the REML estimate does not exist."""
    for what, codes in (
        ("method x segmenter combinations", None),
        ("participants", participant),
        ("references", reference),
    ):
        if _unexplained(X, y, codes) <= 1e-10 * max(float(((y - y.mean()) ** 2).sum()), 1.0):
            raise MixedModelError(
                f"the ratings do not vary within {what} (beyond the method x segmenter effects), so there is no "
                "residual variance and the REML estimate does not exist; collect more ratings before reporting "
                "the mixed model"
            )


def _proportional_odds(
    X: np.ndarray, y: np.ndarray, participant: np.ndarray, names: list[str]
) -> tuple[OrdinalResult | None, str | None, tuple[str, ...]]:
    """The ordinal robustness check: the proportional odds model (None and why when it has no estimate),
    and the warnings raised while fitting it."""
    ordinal, failure = None, None
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
        warnings.simplefilter("always")
        try:
            ordinal = proportional_odds(X, y.astype(int), participant, names, formula=ORDINAL_FORMULA)
        except RuntimeError as e:  # no estimate (e.g. one combination rated 7 every time): said in the report
            failure = f"the proportional odds model was not fitted: {e}"
    return ordinal, failure, tuple(f"proportional odds: {w.category.__name__}: {w.message}" for w in caught)
