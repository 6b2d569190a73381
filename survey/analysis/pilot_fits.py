"""Pilot estimates: the answers a study has so far, fitted with the response model of ``lookalike
simulate`` (:mod:`survey.analysis.simulate` states it), so that a pilot turns into the parameters a
power simulation needs, each with its sampling uncertainty.

Effects are on the simulation's latent scale (a grid's latent similarity is the mean effect of the
conditions that produced it plus noise), so the numbers read like ``--effects`` of ``lookalike simulate``:

* **rating**: maximum likelihood of exactly the simulation's rating model: a rating k means the latent
  (mean effect of the grid's conditions + the rater's bias + noise) fell where ``round(4 + 1.5 * latent)``
  gives k (1 and 7 open-ended, so the scale's clipping is modelled, not ignored); the bias N(0, bias_sd)
  is integrated out per participant by Gauss-Hermite quadrature. Effects are absolute; noise_sd and
  bias_sd are estimated with them (drawn too).
* **pairwise**: maximum likelihood of the Thurstone model with a tie margin that the simulation
  draws from: left when ``latent(left) - latent(right) > m``, right when below ``-m``, tie between,
  with unit noise per grid (the latent scale's unit: only ratios to the noise are identified).
* **ranking**: maximum likelihood of the best and worst of unit-noise latents, the probability of
  each (best, worst) pair by a two-dimensional quadrature (:func:`best_worst_probability`).
* **swipe**: the report's like model (:func:`survey.analysis.swipe_stats.like_model`, GEE, bias-reduced
  sandwich): log odds ratios of a like against the reference condition. These are population-averaged:
  the service simulation's per-rater and per-product noise on the logit scale shrinks them towards 0
  relative to its ``--effects`` (``tests/test_pilot_power.py`` computes what they estimate by quadrature).

Pairwise, ranking and swipe fix the reference condition (alphabetically first) at 0. Maximum-likelihood
fits (:func:`fit_ml`) use participant-clustered sandwich covariances, and count as converged only
when the gradient at the optimum is near zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from statsmodels.tools.numdiff import approx_fprime, approx_hess2

from survey.analysis.plackett_luce import ranking_choice_sets
from survey.analysis.response_model import SimulationError

#: Gradient norm (per answer) above which a maximum-likelihood pilot fit is refused as not converged.
GRADIENT_TOLERANCE = 1e-4
#: The quadrature grid of :func:`best_worst_probability` (latent units).
QUADRATURE_STEP = 0.1
QUADRATURE_HALF_WIDTH = 7.0


@dataclass(frozen=True)
class Contrast:
    """Condition minus the reference condition, on the protocol's scale, with a 95 % Wald interval."""

    condition: str
    reference: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class PilotFit:
    """A protocol's pilot estimates. ``effects``/``cov``: every condition's effect (the reference's
    fixed at 0, variance 0, except for rating whose effects are absolute) and their covariance;
    ``extra``: further parameters drawn with them (``extra_cov`` their covariance, independent of the
    effects); ``fixed``: parameters taken at their estimate."""

    protocol: str
    conditions: tuple[str, ...]
    reference: str
    scale: str
    method: str
    effects: np.ndarray
    cov: np.ndarray
    participants: int
    answers: int
    fixed: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    extra_cov: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def contrasts(self) -> list[Contrast]:
        """Every condition against the reference, with 95 % Wald intervals."""
        r = self.conditions.index(self.reference)
        out = []
        for i, c in enumerate(self.conditions):
            if i == r:
                continue
            est = float(self.effects[i] - self.effects[r])
            se = float(np.sqrt(max(self.cov[i, i] + self.cov[r, r] - 2 * self.cov[i, r], 0.0)))
            out.append(Contrast(c, self.reference, est, se, est - 1.959964 * se, est + 1.959964 * se))
        return out

    def draw(self, rng: np.random.Generator) -> tuple[dict[str, float], dict[str, float]]:
        """Effects and extra parameters drawn from their (normal) sampling distribution."""
        eff = rng.multivariate_normal(self.effects, self.cov, method="eigh")
        extra = dict(self.extra)
        if self.extra:
            drawn = rng.multivariate_normal(list(self.extra.values()), self.extra_cov)
            extra = dict(zip(self.extra, map(float, drawn), strict=True))
        return dict(zip(self.conditions, map(float, eff), strict=True)), extra

    def to_json(self) -> dict:
        return {
            "protocol": self.protocol,
            "scale": self.scale,
            "method": self.method,
            "participants": self.participants,
            "answers": self.answers,
            "reference": self.reference,
            "effects": dict(zip(self.conditions, map(float, self.effects), strict=True)),
            "contrasts": [c.__dict__ for c in self.contrasts()],
            "fixed": self.fixed,
            "extra": self.extra,
        }


def _grid_rows(judgements: pd.DataFrame, protocol: str) -> pd.DataFrame:
    j = judgements[(judgements["protocol"] == protocol) & ~judgements["is_catch"].astype(bool)]
    if j["participant"].nunique() < 2:
        raise SimulationError(
            f"a {protocol} pilot needs answers from at least 2 participants (has {j['participant'].nunique()}); "
            "collect more answers or give --effects instead of --from-pilot"
        )
    return j


def _membership(rows: pd.DataFrame, conds: list[str], key: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per ``key`` (an answer, or an answer's grid) and its condition weights: 1 / (producing conditions)."""
    units = rows.drop_duplicates(key)[key].reset_index(drop=True)
    idx = pd.MultiIndex.from_frame(units).get_indexer(pd.MultiIndex.from_frame(rows[key]))
    X = np.zeros((len(units), len(conds)))
    np.add.at(X, (idx, np.searchsorted(conds, rows["condition"].to_numpy())), 1.0)
    return units, X / X.sum(axis=1, keepdims=True)


def rating_design(judgements: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rating answers, each answer once (for the pilot and for the mixed model's power): the
    conditions, the design (one column per condition, a shared grid's row the mean of its producing
    conditions'), the latent ``(rating - 4) / 1.5`` and the participant and reference codes."""
    j = _grid_rows(judgements, "rating").dropna(subset=["rating"])
    conds = sorted(j["condition"].unique())
    if len(conds) < 2:
        raise SimulationError(f"a rating pilot compares conditions; the answers rate only {conds}")
    answers, X = _membership(j, conds, ["response_id"])
    first = j.drop_duplicates("response_id").set_index("response_id").loc[answers["response_id"]]
    if np.linalg.matrix_rank(X) < len(conds):
        raise SimulationError("the rating answers cannot separate every condition's effect; collect more answers")
    y = (first["rating"].to_numpy(float) - 4) / 1.5
    return conds, X, y, pd.factorize(first["participant"])[0], pd.factorize(first["reference"])[0]


#: Gauss-Hermite nodes over a rater's bias in :func:`rating_pilot`'s likelihood.
BIAS_NODES = 24


def rating_pilot(judgements: pd.DataFrame) -> PilotFit:
    """Condition effects, noise and rater bias from the rating answers: maximum likelihood of the
    simulation's rating model (see the module docstring), the bias integrated out per participant."""
    conds, X, y, participant, _ = rating_design(judgements)
    points = np.rint(y * 1.5 + 4).astype(int)
    cuts = np.r_[-np.inf, (np.arange(1, 7) + 0.5 - 4) / 1.5, np.inf]  # rating k: latent in [cuts[k-1], cuts[k])
    lo, hi = cuts[points - 1], cuts[points]
    nodes, weights = np.polynomial.hermite_e.hermegauss(BIAS_NODES)
    log_w = np.log(weights / weights.sum())
    people = int(participant.max()) + 1

    def nll(theta: np.ndarray) -> np.ndarray:  # per participant
        mu, noise, bias = X @ theta[:-2], np.exp(theta[-2]), np.exp(theta[-1])
        shift = mu[:, None] + bias * nodes[None, :]
        p = stats.norm.cdf((hi[:, None] - shift) / noise) - stats.norm.cdf((lo[:, None] - shift) / noise)
        per_node = np.zeros((people, len(nodes)))
        np.add.at(per_node, participant, np.log(np.clip(p, 1e-300, None)))
        return -special.logsumexp(per_node + log_w, axis=1)

    start = np.r_[np.linalg.lstsq(X, y, rcond=None)[0], np.log(max(y.std(), 0.1)), np.log(0.3)]
    fit = fit_ml(nll, start, np.arange(people))
    c = len(conds)
    method = "maximum likelihood of the interval-censored normal latent with a normal rater bias (Gauss-Hermite)"
    return PilotFit(
        "rating",
        tuple(conds),
        conds[0],
        "latent (rating points / 1.5)",
        method,
        fit.theta[:c],
        fit.cov[:c, :c],
        people,
        len(y),
        extra={"log_noise_sd": float(fit.theta[c]), "log_bias_sd": float(fit.theta[c + 1])},
        extra_cov=fit.cov[c:, c:],
    )


@dataclass(frozen=True)
class MLFit:
    theta: np.ndarray
    cov: np.ndarray  # participant-clustered sandwich, times G / (G - 1)
    gradient_norm: float


def fit_ml(negloglik_obs: Callable[[np.ndarray], np.ndarray], theta0: np.ndarray, groups: np.ndarray) -> MLFit:
    """Minimise the summed per-answer negative log-likelihood (BFGS), then check the optimum: the
    gradient per answer must be below :data:`GRADIENT_TOLERANCE`, else :class:`SimulationError`. The
    covariance is the sandwich ``H^-1 B H^-1`` with ``B`` summed over ``groups`` (participants)."""
    total = lambda t: float(negloglik_obs(t).sum())
    res = optimize.minimize(total, theta0, method="BFGS", options={"gtol": 1e-8, "maxiter": 500})
    theta = res.x
    n = len(groups)
    grad = approx_fprime(theta, total, centered=True)
    if np.linalg.norm(grad) / n > GRADIENT_TOLERANCE:
        raise SimulationError(
            f"the pilot's maximum-likelihood fit did not reach an optimum (gradient {np.linalg.norm(grad):.2g}; "
            f"BFGS: {res.message}); collect more answers"
        )
    hess = approx_hess2(theta, total)
    scores = approx_fprime(theta, negloglik_obs, centered=True).reshape(n, len(theta))
    g, codes = np.unique(groups, return_inverse=True)
    per_group = np.zeros((len(g), len(theta)))
    np.add.at(per_group, codes, scores)
    h_inv = np.linalg.pinv(hess)
    cov = h_inv @ (per_group.T @ per_group) @ h_inv * len(g) / max(len(g) - 1, 1)
    return MLFit(theta, cov, float(np.linalg.norm(grad)))


def _with_reference(free: np.ndarray, r: int) -> np.ndarray:
    return np.insert(free, r, 0.0)


def pairwise_pilot(judgements: pd.DataFrame) -> PilotFit:
    """Condition effects and the tie margin from the pairwise answers (Thurstone model with a tie margin)."""
    j = _grid_rows(judgements, "pairwise")
    conds = sorted(j["condition"].unique())
    if len(conds) < 2:
        raise SimulationError(f"a pairwise pilot compares conditions; the answers show only {conds}")
    units, X = _membership(j, conds, ["response_id", "grid_position"])
    side = pd.DataFrame(X, index=pd.MultiIndex.from_frame(units))
    left, right = side.xs(0, level="grid_position"), side.xs(1, level="grid_position")
    ids = left.index.intersection(right.index)
    diff = left.loc[ids].to_numpy() - right.loc[ids].to_numpy()
    first = j[j["grid_position"] == 0].drop_duplicates("response_id").set_index("response_id").loc[ids]
    outcome, groups = first["outcome"].to_numpy(), first["participant"].to_numpy()
    if not (outcome == "tie").any():
        raise SimulationError("the pairwise answers have no tie, so the tie margin has no estimate; collect more")
    s = np.sqrt(2.0)

    def nll(theta: np.ndarray) -> np.ndarray:
        d, m = diff @ _with_reference(theta[:-1], 0), np.exp(theta[-1])
        p_tie = np.clip(stats.norm.cdf((m - d) / s) - stats.norm.cdf((-m - d) / s), 1e-300, None)
        lp = np.where(
            outcome == "win",
            stats.norm.logcdf((d - m) / s),
            np.where(outcome == "loss", stats.norm.logcdf((-d - m) / s), np.log(p_tie)),
        )
        return -lp

    fit = fit_ml(nll, np.r_[np.zeros(len(conds) - 1), np.log(0.25)], groups)
    cov = np.zeros((len(conds), len(conds)))
    cov[1:, 1:] = fit.cov[:-1, :-1]
    return PilotFit(
        "pairwise",
        tuple(conds),
        conds[0],
        "latent (unit noise per grid)",
        "maximum likelihood, Thurstone model with a tie margin; participant-clustered sandwich",
        _with_reference(fit.theta[:-1], 0),
        cov,
        len(np.unique(groups)),
        len(outcome),
        extra={"log_tie_margin": float(fit.theta[-1])},
        extra_cov=fit.cov[-1:, -1:],
    )


def best_worst_probability(mu: np.ndarray, shown: np.ndarray, best: np.ndarray, worst: np.ndarray) -> np.ndarray:
    """P(option ``best`` has the highest and ``worst`` the lowest of latents ``mu + N(0, 1)``) per
    trial (rows of ``mu``; ``shown`` marks real options): the double integral over the best's latent
    x and the worst's y < x of their densities times, for each other option, P(y < its latent < x),
    by the trapezoid rule on a grid of step :data:`QUADRATURE_STEP` around every trial's latents."""
    t = np.arange(-QUADRATURE_HALF_WIDTH, QUADRATURE_HALF_WIDTH + 1e-9, QUADRATURE_STEP)
    out = np.empty(len(mu))
    below = np.tril(np.ones((len(t), len(t))), -1) + 0.5 * np.eye(len(t))  # y < x, the diagonal halved
    for lo in range(0, len(mu), 64):
        sl = slice(lo, lo + 64)
        m, sh, b, w = mu[sl], shown[sl], best[sl], worst[sl]
        rows = np.arange(len(m))
        centre = m[rows, b][:, None]
        x = centre + t[None, :]  # the grid follows the best option's mean
        cdf = stats.norm.cdf(x[:, None, :] - m[:, :, None])  # trials x options x grid
        inner = np.ones((len(m), len(t), len(t)))
        for k in range(m.shape[1]):
            other = sh[:, k] & (k != b) & (k != w)
            between = cdf[:, k, :, None] - cdf[:, k, None, :]
            inner *= np.where(other[:, None, None], between, 1.0)
        fx = stats.norm.pdf(x - centre)
        fy = stats.norm.pdf(x - m[rows, w][:, None])
        out[sl] = np.einsum("tx,ty,txy,xy->t", fx, fy, inner, below) * QUADRATURE_STEP**2
    return out


def ranking_pilot(judgements: pd.DataFrame) -> PilotFit:
    """Condition effects from the best and worst answers (unit-noise latents, see the module docstring)."""
    _grid_rows(judgements, "ranking")
    conds, sets, best, worst, participant = ranking_choice_sets(judgements)
    if len(conds) < 2:
        raise SimulationError(f"a ranking pilot compares conditions; the answers show only {conds}")
    # trials alike in their options and choices have the same likelihood: compute each kind once
    kinds, kind_of = np.unique(np.column_stack([sets.reshape(len(best), -1), best, worst]), axis=0, return_inverse=True)
    k_sets = kinds[:, :-2].reshape(len(kinds), *sets.shape[1:])
    k_best, k_worst = kinds[:, -2].astype(int), kinds[:, -1].astype(int)
    shown = k_sets.sum(axis=2) > 0

    def nll(theta: np.ndarray) -> np.ndarray:
        mu = k_sets @ _with_reference(theta, 0)
        return -np.log(np.clip(best_worst_probability(mu, shown, k_best, k_worst), 1e-300, None))[kind_of.ravel()]

    fit = fit_ml(nll, np.zeros(len(conds) - 1), participant)
    cov = np.zeros((len(conds), len(conds)))
    cov[1:, 1:] = fit.cov
    return PilotFit(
        "ranking",
        tuple(conds),
        conds[0],
        "latent (unit noise per grid)",
        "maximum likelihood, best and worst of normal latents; participant-clustered sandwich",
        _with_reference(fit.theta, 0),
        cov,
        len(np.unique(participant)),
        len(best),
    )


def swipe_pilot(swipes: pd.DataFrame) -> PilotFit:
    """Log odds ratios of a like against the reference condition, from the report's like model. Their
    covariance comes from refitting with each condition as the reference (the same model reparameterised):
    ``cov(b_i, b_j) = (var b_i + var b_j - var(b_i - b_j)) / 2``."""
    from survey.analysis.swipe_stats import like_model

    try:
        base = like_model(swipes)
        conds = sorted([base.reference, *(o.condition for o in base.odds_ratios)])
        fits = [base, *(like_model(swipes, reference=c) for c in conds[1:])]
    except ValueError as e:
        raise SimulationError(f"the swipe pilot's like model cannot be fitted: {e}") from None
    se = {(o.condition, m.reference): o.std_error for m in fits for o in m.odds_ratios}
    var = lambda a, b: 0.0 if a == b else se.get((a, b), se.get((b, a), 0.0)) ** 2
    ref = base.reference
    cov = np.array([[(var(a, ref) + var(b, ref) - var(a, b)) / 2 for b in conds] for a in conds])
    est = {ref: 0.0, **{o.condition: o.log_odds_ratio for o in base.odds_ratios}}
    judged = swipes[(swipes["phase"] == "judge") & ~swipes["is_check"].astype(bool)]
    return PilotFit(
        "swipe",
        tuple(conds),
        ref,
        "log odds of a like (population-averaged)",
        f"{base.method}: {base.formula}",
        np.array([est[c] for c in conds]),
        cov,
        base.n_clusters,
        len(judged),
        fixed={"like_rate_reference": float(judged.loc[judged["condition"] == ref, "liked"].mean())},
    )
