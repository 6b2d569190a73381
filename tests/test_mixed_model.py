"""The method x segmenter mixed model (survey.analysis.mixed_model): the REML criterion against a dense
computation written here, the fit against statsmodels' crossed-effects MixedLM, shared grids entered once,
convergence and warnings reported, and the tests' calibration and coverage by repeated simulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from survey.analysis import mixed_model
from survey.analysis.conditions import ratings_from_judgements
from survey.analysis.mixed_model import MixedModelError, fit_crossed_intercepts, method_segmenter_model
from survey.analysis.simulate import ResponseModel, simulate_judgements
from tests.helpers import CONDITIONS, expected_rating, synthetic_design

INTERACTION = "C(method)[T.ssim]:C(segmenter)[T.u2netp]"


def crossed_ratings(participants: int, references: int, *, seed: int, shared: float = 0.0) -> pd.DataFrame:
    """A tidy ratings table from the model itself: condition means, participant and reference
    intercepts, normal noise. With ``shared``, that share of answers is on a grid that its condition
    shares with the condition of the other segmenter (one more row, same response_id)."""
    rng = np.random.default_rng(seed)
    mean = {"efficientnet/none": 4.2, "efficientnet/u2netp": 4.8, "ssim/none": 3.6, "ssim/u2netp": 3.9}
    u_p, u_r = rng.normal(0, 0.7, participants), rng.normal(0, 0.4, references)
    rows = []
    for p in range(participants):
        for r in rng.choice(references, min(references, 6), replace=False):
            for c in rng.choice(CONDITIONS, 2, replace=False):
                m, s = c.split("/")
                other = f"{m}/{'none' if s == 'u2netp' else 'u2netp'}"
                both = rng.random() < shared
                mu = (mean[c] + mean[other]) / 2 if both else mean[c]
                rating = mu + u_p[p] + u_r[r] + rng.normal(0, 1)
                base = {"response_id": len(rows), "participant": p + 1, "reference": f"r{r}", "rating": rating}
                rows.append({**base, "method": m, "segmenter": s, "condition": c})
                if both:
                    rows.append({**base, "method": m, "segmenter": other.split("/")[1], "condition": other})
    return pd.DataFrame(rows)


def dense_reml_loglik(X, y, participant, reference, var_p, var_r, var_e) -> float:
    """The REML log-likelihood from its definition, with the full n x n covariance matrix."""
    n, p = X.shape
    Zp = np.eye(participant.max() + 1)[participant]
    Zr = np.eye(reference.max() + 1)[reference]
    V = var_e * np.eye(n) + var_p * Zp @ Zp.T + var_r * Zr @ Zr.T
    Vi = np.linalg.inv(V)
    XVX = X.T @ Vi @ X
    b = np.linalg.solve(XVX, X.T @ Vi @ y)
    r = y - X @ b
    return -0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XVX)[1] + r @ Vi @ r + (n - p) * math.log(2 * math.pi))


def test_criterion_equals_the_dense_reml_likelihood_on_both_code_paths(monkeypatch):
    df = crossed_ratings(12, 5, seed=1, shared=0.2)
    X, _, answers, _ = mixed_model._design(df)
    y = answers["rating"].to_numpy(float)
    part, ref = pd.factorize(answers["participant"])[0], pd.factorize(answers["reference"])[0]
    for limit in (mixed_model._DENSE_LIMIT, 0):  # precomputed per answer-count class, or summed per call
        monkeypatch.setattr(mixed_model, "_DENSE_LIMIT", limit)
        model = mixed_model._Crossed(X, y, part, ref)
        for sp, sr in [(0.0, 0.0), (0.8, 0.3), (1.7, 0.0), (0.0, 2.2), (-0.5, 1.1)]:
            _, _, s2 = model.estimates(np.array([sp, sr]))
            # the profiled criterion at its own residual variance equals the full likelihood there
            want = dense_reml_loglik(X, y, part, ref, sp**2 * s2, sr**2 * s2, s2)
            assert -0.5 * model.deviance(np.array([sp, sr])) == pytest.approx(want, abs=1e-8)


def test_fit_agrees_with_statsmodels_crossed_random_intercepts():
    """Independent check: statsmodels MixedLM, one group with a variance component per factor (the
    dense crossed formulation), REML, with two of its optimisers."""
    import statsmodels.formula.api as smf

    df = crossed_ratings(40, 8, seed=2)
    res = method_segmenter_model(df)
    assert res.converged and res.warnings == ()
    assert (res.n, res.participants, res.references, res.shared_answers) == (480, 40, 8, 0)
    terms = {t.term: t for t in res.terms}
    for method in ("nm", "bfgs"):
        sm = smf.mixedlm(
            "rating ~ C(method) * C(segmenter)",
            df.assign(one=1),
            groups="one",
            re_formula="0",
            vc_formula={"participant": "0 + C(participant)", "reference": "0 + C(reference)"},
        ).fit(reml=True, method=method, maxiter=5000)
        assert res.loglik == pytest.approx(sm.llf, abs=1e-4)
        assert res.loglik >= sm.llf - 1e-8  # never a worse optimum than statsmodels
        for name in sm.fe_params.index:
            assert terms[name].estimate == pytest.approx(sm.fe_params[name], abs=1e-3)
            assert terms[name].std_error == pytest.approx(sm.bse_fe[name], abs=1e-3)
        vc = dict(zip(sm.model.exog_vc.names, sm.vcomp, strict=True))
        assert res.var_participant == pytest.approx(vc["participant"], rel=1e-2)
        assert res.var_reference == pytest.approx(vc["reference"], rel=1e-2)
        assert res.var_residual == pytest.approx(sm.scale, rel=1e-3)
    assert [r.optimizer for r in res.optimizers] == ["BFGS", "Nelder-Mead"]
    assert abs(res.optimizers[0].loglik - res.optimizers[1].loglik) <= res.loglik_tolerance
    b = terms["C(method)[T.ssim]"]  # true difference 3.6 - 4.2 = -0.6
    assert b.ci_low < -0.6 < b.ci_high and b.pvalue < 0.01
    assert b.z == pytest.approx(b.estimate / b.std_error)


def test_mixed_model_matches_ols_without_random_variance_and_finds_a_method_effect():
    import statsmodels.formula.api as smf

    from survey.analysis.mixed_model import method_segmenter_model

    rng = np.random.default_rng(4)
    rows = []
    for p in range(30):
        for ref in range(6):
            for m in ("a", "b"):
                for s in ("x", "y"):
                    mu = 4 + (1.0 if m == "b" else 0.0)
                    rows.append(
                        {
                            "response_id": len(rows),
                            "participant": p,
                            "reference": f"r{ref}",
                            "method": m,
                            "segmenter": s,
                            "condition": f"{m}/{s}",
                            "rating": mu + rng.normal(0, 1),
                        }
                    )
    df = pd.DataFrame(rows)
    res = method_segmenter_model(df)
    terms = {t.term: t for t in res.terms}
    ols = smf.ols("rating ~ C(method) * C(segmenter)", df).fit()
    for name in ols.params.index:  # balanced design: fixed effects equal the OLS estimates
        assert terms[name].estimate == pytest.approx(ols.params[name], abs=1e-6)
    b = terms["C(method)[T.b]"]
    assert b.pvalue < 1e-6 and b.ci_low < 1.0 < b.ci_high
    assert terms["C(segmenter)[T.y]"].ci_low < 0 < terms["C(segmenter)[T.y]"].ci_high
    assert (res.n, res.participants, res.references) == (720, 30, 6)
    assert method_segmenter_model(df[df["segmenter"] == "x"]) is None


def test_shared_grid_answers_enter_once_with_the_mean_design_row():
    """Multiple membership checked against statsmodels on the answer table with averaged dummy columns."""
    import statsmodels.formula.api as smf

    df = crossed_ratings(30, 8, seed=3, shared=0.3)
    res = method_segmenter_model(df)
    answers = df.drop_duplicates("response_id")
    assert res.n == len(answers) < res.rating_rows == len(df)
    assert res.shared_answers == int((df.groupby("response_id").size() > 1).sum()) > 0
    assert "mean of those conditions' rows" in res.shared_grids
    cond = df.assign(
        x_ssim=(df["method"] == "ssim") * 1.0,
        x_u2=(df["segmenter"] == "u2netp") * 1.0,
        x_int=((df["method"] == "ssim") & (df["segmenter"] == "u2netp")) * 1.0,
    )
    mean_rows = cond.groupby("response_id")[["x_ssim", "x_u2", "x_int"]].mean()
    data = answers.set_index("response_id").join(mean_rows).assign(one=1, intercept=1.0)
    fit = smf.mixedlm(
        "rating ~ 0 + intercept + x_ssim + x_u2 + x_int",
        data,
        groups="one",
        re_formula="0",
        vc_formula={"participant": "0 + C(participant)", "reference": "0 + C(reference)"},
    ).fit(reml=True, method="bfgs", maxiter=5000)
    assert res.loglik == pytest.approx(fit.llf, abs=1e-4)
    ours = [t.estimate for t in res.terms]
    assert ours == pytest.approx(list(fit.fe_params), abs=1e-3)


def test_designs_the_model_cannot_estimate_raise_with_the_reason():
    df = crossed_ratings(10, 4, seed=4)
    assert method_segmenter_model(df[df["method"] == "ssim"]) is None  # one method: no interaction to fit
    with pytest.raises(MixedModelError, match=r"no grid of their own: ssim/u2netp"):
        method_segmenter_model(df[df["condition"] != "ssim/u2netp"])
    with pytest.raises(MixedModelError, match="at least two participants and on at least two references"):
        method_segmenter_model(df[df["reference"] == "r0"])
    with pytest.raises(MixedModelError, match="do not vary within method x segmenter combinations"):
        method_segmenter_model(df.assign(rating=df["condition"].map({c: i for i, c in enumerate(CONDITIONS)})))
    with pytest.raises(MixedModelError, match="do not vary within participants"):
        method_segmenter_model(df.assign(rating=df["participant"] % 7 + 1))
    with pytest.raises(ValueError, match="lacks column"):
        method_segmenter_model(df.drop(columns="response_id"))


def test_disagreeing_optimisers_and_fitting_warnings_are_reported(monkeypatch):
    from survey.analysis.report_mixed import mixed_model_section

    df = crossed_ratings(30, 6, seed=5)
    good = method_segmenter_model(df)
    html = mixed_model_section(good)
    assert good.formula in html and "NOT converge" not in html
    assert f"{good.optimizers[0].loglik:.3f}" in html and f"{good.optimizers[1].loglik:.3f}" in html
    stopped = (("BFGS", (1.0, 1.0), {"maxiter": 1}), ("Nelder-Mead", (0.3, 0.6), {"maxiter": 3}))
    monkeypatch.setattr(mixed_model, "_OPTIMIZERS", stopped)
    bad = method_segmenter_model(df)
    assert not bad.converged and not any(r.success for r in bad.optimizers)
    assert "NOT converge" in mixed_model_section(bad)

    monkeypatch.undo()  # the optimisers as shipped again
    crossed_deviance = mixed_model._Crossed.deviance

    def deviance_with_warning(self, s):
        import warnings

        warnings.warn("something odd in the criterion", RuntimeWarning, stacklevel=1)
        return crossed_deviance(self, s)

    monkeypatch.setattr(mixed_model._Crossed, "deviance", deviance_with_warning)
    warned = method_segmenter_model(df)
    assert warned.warnings and all(w == "RuntimeWarning: something odd in the criterion" for w in warned.warnings)
    assert "something odd in the criterion" in mixed_model_section(warned)
    monkeypatch.undo()
    real_ordinal = mixed_model.proportional_odds

    def ordinal_with_warning(*args, **kwargs):
        import warnings

        warnings.warn("odd thresholds", UserWarning, stacklevel=1)
        return real_ordinal(*args, **kwargs)

    monkeypatch.setattr(mixed_model, "proportional_odds", ordinal_with_warning)
    warned = method_segmenter_model(df)
    assert warned.warnings == ("proportional odds: UserWarning: odd thresholds",) and warned.converged
    assert "proportional odds: UserWarning: odd thresholds" in mixed_model_section(warned)


def test_fit_of_arbitrary_design_matches_generalised_least_squares_at_known_variances():
    """At the REML variances, the fixed effects are the GLS estimates with that covariance."""
    rng = np.random.default_rng(6)
    n = 300
    part, ref = rng.integers(0, 25, n), rng.integers(0, 7, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.random(n)])
    y = X @ [1.0, 0.5, -2.0] + rng.normal(0, 0.8, 25)[part] + rng.normal(0, 0.5, 7)[ref] + rng.normal(size=n)
    fit = fit_crossed_intercepts(X, y, part, ref)
    V = (
        fit.var_residual * np.eye(n)
        + fit.var_participant * (part[:, None] == part[None, :])
        + fit.var_reference * (ref[:, None] == ref[None, :])
    )
    Vi = np.linalg.inv(V)
    cov = np.linalg.inv(X.T @ Vi @ X)
    assert fit.beta == pytest.approx(cov @ X.T @ Vi @ y, abs=1e-8)
    assert fit.cov == pytest.approx(cov, abs=1e-8)
    assert fit.loglik == pytest.approx(
        dense_reml_loglik(X, y, part, ref, fit.var_participant, fit.var_reference, fit.var_residual), abs=1e-8
    )


def test_proportional_odds_agrees_with_statsmodels_ordered_model():
    """The ordinal robustness check against statsmodels' OrderedModel: estimates, thresholds and log-likelihood,
    model-based standard errors (our analytic Hessian), and participant-clustered ones (statsmodels multiplies by
    (n - 1) / (n - k) on top of our G / (G - 1))."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    from survey.analysis.ordinal import proportional_odds

    df = crossed_ratings(60, 8, seed=8, shared=0.2).assign(rating=lambda d: np.clip(np.round(d["rating"]), 1, 7))
    X, names, answers, _ = mixed_model._design(df)
    y = answers["rating"].to_numpy(int)
    part = pd.factorize(answers["participant"])[0]
    ours = proportional_odds(X, y, part, names, formula="f")
    assert [t.term for t in ours.terms] == names[1:] and ours.levels == sorted(set(y)) and ours.participants == 60
    model = OrderedModel(y, X[:, 1:], distr="logit")
    plain = model.fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-8)
    clustered = model.fit(
        method="bfgs", disp=False, maxiter=5000, gtol=1e-8, cov_type="cluster", cov_kwds={"groups": part}
    )
    k = len(ours.terms)
    assert [t.estimate for t in ours.terms] == pytest.approx(plain.params[:k], abs=1e-4)
    assert ours.thresholds == pytest.approx(model.transform_threshold_params(plain.params)[1:-1], abs=1e-4)
    assert ours.loglik == pytest.approx(plain.llf, abs=1e-6)
    levels, level = np.unique(y, return_inverse=True)
    from survey.analysis.ordinal import _Cells

    cells = _Cells(X[:, 1:], level, len(levels))
    params = np.concatenate([ours.thresholds, [t.estimate for t in ours.terms]])
    model_se = np.sqrt(np.diag(np.linalg.inv(cells.hess(params))))[len(levels) - 1 :]
    assert model_se == pytest.approx(plain.bse[:k], rel=1e-3)
    n, n_params = len(y), len(params)
    factor = np.sqrt((n - 1) / (n - n_params))
    assert [t.std_error * factor for t in ours.terms] == pytest.approx(clustered.bse[:k], rel=1e-3)


def test_proportional_odds_gradient_and_hessian_are_exact():
    from scipy.optimize import approx_fprime, check_grad

    from survey.analysis.ordinal import _Cells

    rng = np.random.default_rng(9)
    X = rng.integers(0, 2, (200, 3)).astype(float)
    level = rng.integers(0, 5, 200)
    cells = _Cells(X, level, 5)
    params = np.array([-1.5, -0.4, 0.5, 1.6, 0.3, -0.2, 0.4])
    f = lambda p: cells.value_grad(p)[0]
    g = lambda p: cells.value_grad(p)[1]
    assert check_grad(f, g, params) < 1e-5 * np.linalg.norm(g(params))
    numeric = np.array([approx_fprime(params, lambda p: g(p)[i], 1e-7) for i in range(len(params))])
    assert cells.hess(params) == pytest.approx(numeric, abs=1e-4)
    assert cells.value_grad(params[[1, 0, 2, 3, 4, 5, 6]])[0] == np.inf  # thresholds out of order


def test_ordinal_check_is_reported_or_its_failure_said():
    from survey.analysis.report_mixed import mixed_model_section

    df = crossed_ratings(40, 6, seed=10).assign(rating=lambda d: np.clip(np.round(d["rating"]), 1, 7))
    res = method_segmenter_model(df)
    assert res.ordinal is not None and res.ordinal_failure is None
    html = mixed_model_section(res)
    assert "proportional odds" in html and f"{res.ordinal.terms[-1].estimate:.2f}" in html
    top = df.assign(rating=df["rating"].where(df["condition"] != "ssim/u2netp", 7))  # one combination all 7s
    res = method_segmenter_model(top)
    assert res.ordinal is None and "log odds ratio is infinite" in res.ordinal_failure
    assert res.converged  # the linear model is unaffected
    assert "log odds ratio is infinite" in mixed_model_section(res)


@pytest.mark.slow
def test_interaction_test_is_calibrated_and_intervals_cover_over_200_simulated_studies():
    """No interaction on the latent scale. The effects are centred (method +-0.2, segmenter +-0.15), so by the
    response model's symmetry about rating 4 the interaction is exactly 0 on the rating scale too; the true
    fixed effects are differences of expected ratings (rounding and clipping included). The same symmetry makes the
    ordinal check's interaction (a log odds ratio) exactly 0: reflecting the scale negates it and maps the design
    onto itself."""
    a, c = 0.2, 0.15
    effects = {"efficientnet/u2netp": a + c, "efficientnet/none": a - c, "ssim/u2netp": c - a, "ssim/none": -a - c}
    model = ResponseModel(effects=effects, noise_sd=1.0, bias_sd=0.5)
    mu = {k: expected_rating(v, model) for k, v in effects.items()}
    truth = {
        "Intercept": mu["efficientnet/none"],
        "C(method)[T.ssim]": mu["ssim/none"] - mu["efficientnet/none"],
        "C(segmenter)[T.u2netp]": mu["efficientnet/u2netp"] - mu["efficientnet/none"],
        INTERACTION: mu["ssim/u2netp"] - mu["ssim/none"] - mu["efficientnet/u2netp"] + mu["efficientnet/none"],
    }
    assert truth[INTERACTION] == pytest.approx(0, abs=1e-12)
    design = synthetic_design(CONDITIONS, 10, 12, protocols=("rating",))
    reps, rejected, rejected_ordinal = 200, 0, 0
    covered = dict.fromkeys(truth, 0)
    for rep in range(reps):
        j = simulate_judgements(design, 40, model=model, rng=np.random.default_rng([7, rep]))
        res = method_segmenter_model(ratings_from_judgements(j))
        assert res.converged and res.warnings == () and res.n == 480
        for t in res.terms:
            covered[t.term] += t.ci_low <= truth[t.term] <= t.ci_high
        rejected += {t.term: t for t in res.terms}[INTERACTION].pvalue < 0.05
        rejected_ordinal += {t.term: t for t in res.ordinal.terms}[INTERACTION].pvalue < 0.05
    # 200 studies: binomial 95% range about 0.02-0.08 around 0.05, 0.92-0.98 around 0.95 per term
    assert 0.02 <= rejected / reps <= 0.09, rejected / reps
    assert 0.02 <= rejected_ordinal / reps <= 0.09, rejected_ordinal / reps
    assert all(0.90 <= k / reps <= 0.99 for k in covered.values()), covered
    assert 0.93 <= sum(covered.values()) / (4 * reps) <= 0.97, covered


def test_the_reports_fixed_effects_agree_with_an_independent_crossed_fit_of_the_export(study_db):
    """Issue 12's check, as a reviewer would run it: simulate a study through the service, take the
    report's model, and refit the export's rating answers with statsmodels' crossed-effects MixedLM
    (one group, participant and reference variance components, Nelder-Mead), each answer once with
    the mean of its producing conditions' treatment-coded rows, coded here by hand."""
    import statsmodels.formula.api as smf

    from survey.analysis.results import compute_results
    from survey.analysis.simulate import simulate
    from survey.participants import service
    from survey.study.export import tables

    _, make_session, _ = study_db
    study = service.current_study(make_session)
    effects = {"efficientnet/u2netp": 1.5, "efficientnet/none": 1.0, "ssim/u2netp": -0.5, "ssim/none": -1.0}
    simulate(make_session, study.id, 60, seed=4, model=ResponseModel(effects=effects))
    res = compute_results(make_session, study.id, n_boot=20)
    assert res.exclusions.kept == 60  # attentive simulated raters: the model sees every answer
    report = {t.term: t.estimate for t in res.mixed_model.terms}

    j = tables(make_session, study.id)["judgements"]
    j = j[(j["protocol"] == "rating") & ~j["is_catch"]].copy()
    j["m"] = (j["method"] == "ssim").astype(float)
    j["s"] = (j["segmenter"] == "u2netp").astype(float)
    j["ms"] = j["m"] * j["s"]
    answers = j.groupby("response_id").agg(
        rating=("rating", "first"),
        participant=("participant", "first"),
        reference=("reference", "first"),
        m=("m", "mean"),
        s=("s", "mean"),
        ms=("ms", "mean"),
    )
    answers["rating"] = answers["rating"].astype(float)
    answers["one"] = 1
    vc = {"participant": "0 + C(participant)", "reference": "0 + C(reference)"}
    fit = smf.mixedlm("rating ~ m + s + ms", answers, groups="one", vc_formula=vc, re_formula="0").fit(
        reml=True, method="nm", maxiter=5000
    )
    independent = {
        "Intercept": fit.fe_params["Intercept"],
        "C(method)[T.ssim]": fit.fe_params["m"],
        "C(segmenter)[T.u2netp]": fit.fe_params["s"],
        INTERACTION: fit.fe_params["ms"],
    }
    assert res.mixed_model.n == len(answers)
    for term, value in independent.items():
        assert report[term] == pytest.approx(value, abs=0.05), term


def test_a_model_that_cannot_be_estimated_is_said_in_the_report_which_still_renders(study_db, monkeypatch):
    from survey.analysis import protocol_parts as analysis_parts
    from survey.analysis.report import render_html
    from survey.analysis.results import compute_results
    from survey.analysis.simulate import simulate
    from survey.participants import service

    _, make_session, _ = study_db
    study = service.current_study(make_session)
    simulate(make_session, study.id, 6, seed=1)
    degenerate = crossed_ratings(10, 4, seed=4)
    with pytest.raises(MixedModelError) as caught:
        method_segmenter_model(degenerate[degenerate["reference"] == "r0"])
    monkeypatch.setattr(analysis_parts, "method_segmenter_model", lambda ratings: (_ for _ in ()).throw(caught.value))
    res = compute_results(make_session, study.id, n_boot=20)
    assert res.mixed_model is None and res.mixed_model_failure == str(caught.value)
    assert res.to_json()["mixed_model_failure"] == str(caught.value)
    page = render_html(res)
    assert "Not estimated: the mixed model needs answers from at least two participants" in page
    assert "Friedman" in page  # the rest of the report is there


# Penicillin (Davies and Goldsmith 1972, Statistical Methods in Research and Production, via lme4's
# `Penicillin`): diameter (mm) of the growth-inhibition zone, 24 plates (rows a..x) x 6 penicillin samples
# (columns A..F), one observation per cell; the values as printed by `data(Penicillin, package = "lme4")`.
PENICILLIN = """
a 27 23 26 23 23 21
b 27 23 26 23 23 21
c 25 21 25 24 24 20
d 26 23 25 23 23 20
e 25 22 26 22 23 20
f 24 22 25 23 22 19
g 24 20 23 21 22 19
h 26 22 26 24 24 21
i 24 21 24 22 22 20
j 24 21 24 23 22 19
k 26 23 26 24 24 21
l 25 22 26 24 24 20
m 26 24 26 24 25 22
n 26 23 26 23 23 20
o 26 23 25 24 24 22
p 25 22 25 23 23 20
q 25 21 24 23 23 20
r 25 22 24 23 23 19
s 24 21 23 21 21 19
t 26 23 26 24 24 21
u 25 21 24 22 22 18
v 25 22 25 22 22 20
w 24 21 24 22 24 19
x 24 21 24 22 21 18
"""


def test_penicillin_reproduces_lme4_and_counts_as_converged_despite_bfgs_precision_loss():
    """lme4's documentation of `lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)`: REML criterion
    330.8606; standard deviations plate 0.8467, sample 1.9316, residual 0.5499; intercept 22.9722 (SE 0.8086).
    BFGS stops there with "precision loss"; the fit is converged because both optimisers agree and the
    gradient at the estimate is near zero (issue 23), and a point off the optimum is not."""
    table = np.array([[float(v) for v in line.split()[1:]] for line in PENICILLIN.strip().splitlines()])
    assert table.shape == (24, 6) and table.mean() == pytest.approx(22.9722, abs=1e-4)
    y, plate, sample = table.ravel(), np.repeat(np.arange(24), 6), np.tile(np.arange(6), 24)
    fit = fit_crossed_intercepts(np.ones((144, 1)), y, plate, sample)
    assert -2 * fit.loglik == pytest.approx(330.8606, abs=1e-4)
    assert math.sqrt(fit.var_participant) == pytest.approx(0.8467, abs=1e-4)
    assert math.sqrt(fit.var_reference) == pytest.approx(1.9316, abs=1e-4)
    assert math.sqrt(fit.var_residual) == pytest.approx(0.5499, abs=1e-4)
    assert fit.beta[0] == pytest.approx(22.9722, abs=1e-4)
    assert math.sqrt(fit.cov[0, 0]) == pytest.approx(0.8086, abs=1e-4)
    bfgs, nelder_mead = fit.runs
    assert not bfgs.success and "precision loss" in bfgs.message and nelder_mead.success
    assert abs(bfgs.loglik - nelder_mead.loglik) < 1e-8
    assert fit.gradient < 1e-6 and fit.converged
    # the same gradient one percent away from the optimum is far above the tolerance
    model = mixed_model._Crossed(np.ones((144, 1)), y, plate, sample)
    s = np.sqrt(np.array([fit.var_participant, fit.var_reference]) / fit.var_residual)
    away = mixed_model.criterion_gradient(lambda t: model.deviance(t) / model.n, s * np.array([1.0, 1.01]))
    assert away > 3 * mixed_model.GRADIENT_TOLERANCE


def test_optimisers_that_agree_off_the_optimum_are_not_converged(monkeypatch):
    """Agreement alone is not enough: both optimisers stopped at (or one step from) the same start."""
    same_start = (("BFGS", (1.0, 1.0), {"maxiter": 0}), ("Nelder-Mead", (1.0, 1.0), {"maxiter": 1}))
    monkeypatch.setattr(mixed_model, "_OPTIMIZERS", same_start)
    res = method_segmenter_model(crossed_ratings(30, 6, seed=5))
    assert abs(res.optimizers[0].loglik - res.optimizers[1].loglik) <= res.loglik_tolerance
    assert res.gradient > res.gradient_tolerance and not res.converged
