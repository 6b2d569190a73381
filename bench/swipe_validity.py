"""Validity of the swipe statistics (survey.analysis.swipe_stats) by repeated simulation
(survey.analysis.swipe_simulation): one world (catalog) per scenario, ``--studies`` studies of
``--participants`` participants drawn in it (one round per category: 4 rounds, 4 conditions, k = 5).

* ``null``: every condition sees the catalog through the same noise, so every condition recommends the same
  products (the exact null). False-positive rate at ``--alpha`` of the paired comparisons (any Holm-corrected
  pair significant) and of the model's joint test.
* ``effects``: noise sd 0 (efficientnet/u2netp), 0.5, 1.5 and a random recommender (ssim/none). Coverage of the
  95 % intervals of the like rates, the base rate and the lifts (ratio and difference) against the
  population's values (:func:`population_truth`, 200,000 simulated participants), recovery of the true order
  of the like rates (share of studies with exactly that order; mean Spearman correlation), and power.
  ``random_control``: the true lift of the random recommender and the base rates (see swipe_stats on lifts).
* ``--compare-mixed N``: on the first N null studies, the GEE (``like_model``) against statsmodels' mixed
  logistic model (``BinomialBayesMixedGLM``, random intercepts for participant and reference; variational
  Bayes and Laplace/MAP fits): false-positive rates of the joint test and of each contrast at ``--alpha``,
  mean standard error over the standard deviation of the estimates, seconds per fit.
* ``--compare-gee N``: N further null studies, one GEE fit each, its robust and bias-reduced (Mancl-DeRouen)
  covariances with chi-square/normal or F/t (participants - 1 degrees of freedom) references.

Every rate comes with its Monte Carlo standard error (``mcse``). One process; prints one JSON object last.
On this project's 2-core machine (2026-12-07): the two scenarios 50 s; ``--compare-mixed 200`` about 5 minutes
more (the mixed fits), ``--compare-gee 1000`` about 1.5 minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import emit
from survey.analysis import swipe_stats as ss
from survey.analysis.swipe_simulation import SwipeModel, make_world, population_truth, simulate_swipes

CONDITIONS = ("efficientnet/u2netp", "efficientnet/none", "ssim/u2netp", "ssim/none")
EFFECT_SD = dict(zip(CONDITIONS, (0.0, 0.5, 1.5, np.inf), strict=True))
NULL_SD = dict.fromkeys(CONDITIONS, 0.5)


def share(hits: list) -> dict:
    """A share of studies with its Monte Carlo standard error."""
    p = float(np.mean(hits))
    return {"rate": round(p, 4), "mcse": round(float(np.sqrt(p * (1 - p) / len(hits))), 4), "n": len(hits)}


def null_scenario(args, model: SwipeModel) -> tuple[dict, list]:
    """False positives of the paired comparisons and of the model under the exact null; the studies' rows."""
    world = make_world(NULL_SD, rng=np.random.default_rng([args.seed, 0]))
    pairs, joint, contrasts, studies, unconverged = [], [], [], [], 0
    for rep in range(args.studies):
        s = simulate_swipes(world, model, args.participants, rng=np.random.default_rng([args.seed, 1, rep])).swipes
        fit = ss.like_model(s)
        unconverged += not fit.converged
        joint.append(fit.wald_pvalue < args.alpha)
        contrasts += [o.pvalue < args.alpha for o in fit.odds_ratios]
        pairs.append(min(c.pvalue_holm for c in ss.paired_comparisons(s)) < args.alpha)
        studies.append(s)
    out = {
        "paired_any_holm_fpr": share(pairs),
        "model_joint_fpr": share(joint),
        "model_contrast_fpr": share(contrasts),
        "model_not_converged": unconverged,
    }
    return out, studies


def effects_scenario(args, model: SwipeModel) -> dict:
    """Coverage, order recovery and power with true differences."""
    world = make_world(EFFECT_SD, rng=np.random.default_rng([args.seed, 2]))
    truth = population_truth(world, model, rng=np.random.default_rng([args.seed, 3]), n_participants=200_000)
    order = sorted(CONDITIONS, key=lambda c: -truth.like_rate[c])
    cover: dict[str, list] = {k: [] for k in ("like_rate", "base_rate", "lift_ratio", "lift_difference")}
    exact, rho, joint, pairs, naive, pooled = [], [], [], [], [], []
    for rep in range(args.studies):
        s = simulate_swipes(world, model, args.participants, rng=np.random.default_rng([args.seed, 4, rep])).swipes
        rng = np.random.default_rng([args.seed, 5, rep])
        rates = ss.like_rates(s, n_boot=args.n_boot, rng=rng)
        cover["like_rate"] += [r.ci_low <= truth.like_rate[r.condition] <= r.ci_high for r in rates.rates]
        base = ss.base_rate(s, n_boot=args.n_boot, rng=rng)
        cover["base_rate"].append(base.ci_low <= truth.base_rate <= base.ci_high)
        naive.append(base.naive_round_mean)
        pooled.append(base.rate)
        for lift in ss.lifts(s, n_boot=args.n_boot, rng=rng).lifts:
            c = lift.condition
            cover["lift_ratio"].append(lift.ratio_ci_low <= truth.lift_ratio[c] <= lift.ratio_ci_high)
            cover["lift_difference"].append(
                lift.difference_ci_low <= truth.lift_difference[c] <= lift.difference_ci_high
            )
        rate = {r.condition: r.rate for r in rates.rates}
        estimate = [rate[c] for c in CONDITIONS]
        exact.append(sorted(CONDITIONS, key=lambda c: -rate[c]) == order)
        rho.append(stats.spearmanr(estimate, [truth.like_rate[c] for c in CONDITIONS]).statistic)
        joint.append(ss.like_model(s).wald_pvalue < args.alpha)
        pairs.append(min(c.pvalue_holm for c in ss.paired_comparisons(s)) < args.alpha)
    return {
        "true_like_rate": {c: round(truth.like_rate[c], 4) for c in order},
        "true_base_rate": round(truth.base_rate, 4),
        "coverage": {k: share(v) for k, v in cover.items()},
        "order_recovered": share(exact),
        "order_spearman_mean": round(float(np.mean(rho)), 4),
        "power_model_joint": share(joint),
        "power_paired_any_holm": share(pairs),
        "base_rate_mean_estimate": {
            "pooled": round(float(np.mean(pooled)), 4),
            "naive": round(float(np.mean(naive)), 4),
        },
        "random_control": {
            "condition": "ssim/none",
            "true_lift_ratio": round(truth.lift_ratio["ssim/none"], 4),
            "base_rate_swipe_weighted": round(truth.base_rate, 4),
            "base_rate_participant_mean": round(truth.base_rate_mean, 4),
        },
    }


def _mixed(s) -> dict:
    """The mixed logistic model by variational Bayes and by MAP (Laplace) on the judged non-check rows."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    j = s[(s["phase"] == "judge") & ~s["is_check"]].assign(liked=lambda d: d["liked"].astype(float))
    formula = "liked ~ C(condition, Treatment(reference='efficientnet/none'))"
    vc = {"participant": "0 + C(participant)", "reference": "0 + C(reference)"}
    model = BinomialBayesMixedGLM.from_formula(formula, vc, j)
    out = {}
    for name in ("vb", "map"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # counted below: the estimates are judged by their calibration
            fit = model.fit_vb() if name == "vb" else model.fit_map()
        seconds = time.perf_counter() - t0
        b = fit.fe_mean[1:]
        cov = np.diag(fit.fe_sd[1:] ** 2) if name == "vb" else np.asarray(fit.cov_params())[1:4, 1:4]
        chi2 = float(b @ np.linalg.solve(cov, b))
        se = np.sqrt(np.diag(cov))
        out[name] = (b, se, stats.chi2.sf(chi2, len(b)), 2 * stats.norm.sf(np.abs(b / se)), seconds)
    return out


def _gee_variants(s) -> dict:
    """One GEE fit: robust and bias-reduced covariances, chi2/normal and F/t references."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    j = s[(s["phase"] == "judge") & ~s["is_check"]].assign(liked=lambda d: d["liked"].astype(float))
    formula = "liked ~ C(condition, Treatment(reference='efficientnet/none'))"
    t0 = time.perf_counter()
    fit = smf.gee(
        formula, "participant", j, family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable(), eval_env={}
    ).fit(cov_type="bias_reduced")
    seconds = time.perf_counter() - t0
    dfd = j["participant"].nunique() - 1
    b = np.asarray(fit.params)[1:]
    out = {}
    for cov_name, cov in (("robust", fit.cov_robust), ("bias_reduced", fit.cov_robust_bc)):
        cov = np.asarray(cov)[1:, 1:]
        se, chi2 = np.sqrt(np.diag(cov)), float(b @ np.linalg.solve(cov, b))
        out[f"{cov_name}_chi2_normal"] = (b, se, stats.chi2.sf(chi2, 3), 2 * stats.norm.sf(np.abs(b / se)), seconds)
        out[f"{cov_name}_F_t"] = (b, se, stats.f.sf(chi2 / 3, 3, dfd), 2 * stats.t.sf(np.abs(b / se), dfd), seconds)
    return out


def _like_model(s) -> dict:
    """``like_model`` as the mixed fits are summarised."""
    t0 = time.perf_counter()
    fit = ss.like_model(s, reference="efficientnet/none")
    b, se = np.array([o.log_odds_ratio for o in fit.odds_ratios]), np.array([o.std_error for o in fit.odds_ratios])
    p = np.array([o.pvalue for o in fit.odds_ratios])
    return {"like_model_gee": (b, se, fit.wald_pvalue, p, time.perf_counter() - t0)}


def compare(studies, fitters, alpha: float) -> dict:
    """The fits of ``fitters`` on the same null studies, summarised (see the module docstring)."""
    fits: dict[str, list] = {}
    for s in studies:
        for fitter in fitters:
            for name, value in fitter(s).items():
                fits.setdefault(name, []).append(value)
    out = {}
    for name, rows in fits.items():
        b, se, p, pc, sec = (list(x) for x in zip(*rows, strict=True))
        out[name] = {
            "joint_fpr": share([x < alpha for x in p]),
            "contrast_fpr": share(list((np.array(pc) < alpha).ravel())),
            "se_over_sd": round(float(np.mean(se) / np.array(b).std(axis=0, ddof=1).mean()), 3),
            "seconds_per_fit": round(float(np.mean(sec)), 3),
        }
    return out


def main() -> None:
    """Run both scenarios (and the comparisons asked for) and print the JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=200)
    ap.add_argument("--participants", type=int, default=40)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare-mixed", type=int, default=0, metavar="N", help="null studies for the mixed model")
    ap.add_argument("--compare-gee", type=int, default=0, metavar="N", help="further null studies, GEE variants")
    args = ap.parse_args()
    model = SwipeModel()
    t0 = time.perf_counter()
    null, studies = null_scenario(args, model)
    effects = effects_scenario(args, model)
    result: dict = {
        "studies": args.studies,
        "participants": args.participants,
        "rounds_per_participant": 4,
        "conditions": len(CONDITIONS),
        "k": 5,
        "n_boot": args.n_boot,
        "alpha": args.alpha,
        "model": {f: getattr(model, f) for f in ("intercept", "slope", "participant_sd", "taste_sd", "max_swipes")},
        "null": null,
        "effects": effects,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.compare_mixed:
        result["compare_mixed"] = compare(studies[: args.compare_mixed], (_like_model, _mixed), args.alpha)
    if args.compare_gee:
        seeds = range(args.studies, args.studies + args.compare_gee)
        world = make_world(NULL_SD, rng=np.random.default_rng([args.seed, 0]))
        more = (
            simulate_swipes(world, model, args.participants, rng=np.random.default_rng([args.seed, 1, r]))
            for r in seeds
        )
        result["compare_gee"] = compare((m.swipes for m in more), (_gee_variants,), args.alpha)
    emit(result)


if __name__ == "__main__":
    main()
