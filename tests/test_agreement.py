"""Agreement between participants (survey.analysis.agreement): Krippendorff's alpha against the
published example, split-half reliability and when Spearman-Brown is reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey.analysis.simulate import ResponseModel, simulate
from survey.participants import service
from survey.study.export import tables


def test_krippendorff_alpha_reproduces_the_published_example():
    """Krippendorff (2011), 'Computing Krippendorff's alpha-reliability': 4 coders, 12 units."""
    from survey.analysis.agreement import krippendorff_alpha

    n = np.nan
    data = pd.DataFrame(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
            [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
        ]
    )
    rng = np.random.default_rng(0)
    assert krippendorff_alpha(data, "nominal", n_boot=50, rng=rng)[0] == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(data, "interval", n_boot=50, rng=rng)[0] == pytest.approx(0.849, abs=5e-4)
    alpha, lo, hi = krippendorff_alpha(data, "ordinal", n_boot=200, rng=rng)
    assert lo <= alpha <= hi
    with pytest.raises(ValueError, match="level must be"):
        krippendorff_alpha(data, "interval-ish", rng=rng)


def test_agreement_and_split_half_on_simulated_raters(study_db):
    from survey.analysis.agreement import split_half
    from survey.analysis.conditions import ratings_from_judgements
    from survey.analysis.protocol_parts import agreement

    _, make_session, _ = study_db
    study = service.current_study(make_session)
    effects = {"efficientnet/u2netp": 2.0, "ssim/u2netp": -2.0}
    simulate(make_session, study.id, 40, seed=2, model=ResponseModel(effects=effects, noise_sd=0.3, bias_sd=0.1))
    j = tables(make_session, study.id)["judgements"]
    rng = np.random.default_rng(0)
    rating = agreement(j, "rating", n_boot=100, rng=rng)
    assert rating.level == "ordinal" and rating.units > 0 and rating.alpha > 0.5  # low noise: raters agree
    pair = agreement(j, "pairwise", n_boot=100, rng=rng)
    assert pair.level == "nominal" and pair.alpha > 0.3
    sh = split_half(ratings_from_judgements(j), splits=50, rng=rng)
    assert sh.spearman_brown > 0.8 and sh.splits == 50


def test_spearman_brown_is_reported_only_for_a_non_negative_split_half_correlation():
    """Two pairs of raters order three conditions in opposite ways, so random halves correlate negatively;
    2 r / (1 + r) would fall below -1. The result, its JSON and the report give no value but the reason."""
    import dataclasses

    from survey.analysis.agreement import spearman_brown, split_half
    from survey.analysis.report import agreement_section
    from survey.analysis.results import nan_to_none

    answers = {1: (1, 4, 7), 2: (2, 4, 6), 3: (7, 4, 1), 4: (6, 5, 1)}
    ratings = pd.DataFrame(
        [(p, c, v) for p, vs in answers.items() for c, v in zip("abc", vs, strict=True)],
        columns=["participant", "condition", "rating"],
    )
    sh = split_half(ratings, splits=50, rng=np.random.default_rng(0))
    assert sh.splits > 0 and sh.r < 0
    assert sh.spearman_brown is None and "negative" in sh.spearman_brown_reason
    as_json = nan_to_none(dataclasses.asdict(sh))
    assert as_json["spearman_brown"] is None and as_json["spearman_brown_reason"] == sh.spearman_brown_reason
    html = agreement_section([], sh)
    assert f"r = {sh.r:.2f} between random halves" in html and "(Spearman-Brown) n/a because" in html
    assert f"{2 * sh.r / (1 + sh.r):.2f}" not in html
    value, reason = spearman_brown(0.5)  # non-negative: the usual step
    assert value == pytest.approx(2 / 3) and reason is None
    assert spearman_brown(0.0) == (0.0, None)
