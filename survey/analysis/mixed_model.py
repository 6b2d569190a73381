"""Method x segmenter: a linear mixed model of the ratings with random effects for participants and
references."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


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
    terms = [
        ModelTerm(
            name,
            float(fit.fe_params[name]),
            float(fit.bse_fe[name]),
            float(fit.pvalues[name]),
            float(ci.loc[name, 0]),
            float(ci.loc[name, 1]),
        )
        for name in fit.fe_params.index
    ]
    return MixedModelResult(
        f"{formula} + (1 | participant) + (1 | reference)",
        terms,
        len(df),
        int(df["participant"].nunique()),
        int(df["reference"].nunique()),
        converged,
    )
