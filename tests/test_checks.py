"""The attention-check rule (survey.participants.protocol_parts): what fails, what an attentive person may answer."""

from __future__ import annotations

import pytest

from survey.participants.protocol_parts import CATCH_RATING_MAX, failed_check

REAL, OTHER, CATCH = "r1", "r2", "c"


@pytest.mark.parametrize(("rating", "failed"), [(1, False), (CATCH_RATING_MAX, False), (4, True), (7, True)])
def test_rating_check_fails_at_somewhat_similar_or_more(rating, failed):
    assert failed_check("rating", [CATCH], CATCH, {"rating": rating}) is failed


@pytest.mark.parametrize(
    ("grids", "choice", "failed"),
    [
        ([REAL, CATCH], "left", False),  # the real set
        ([REAL, CATCH], "tie", False),  # equally (un)like the product: not a failure
        ([REAL, CATCH], "right", True),  # the unrelated set chosen
        ([CATCH, REAL], "right", False),
        ([CATCH, REAL], "tie", False),
        ([CATCH, REAL], "left", True),
    ],
)
def test_pairwise_check_fails_only_when_the_unrelated_set_is_chosen(grids, choice, failed):
    assert failed_check("pairwise", grids, CATCH, {"choice": choice}) is failed


@pytest.mark.parametrize(
    ("best", "worst", "failed"),
    [
        (REAL, CATCH, False),  # the unrelated set least similar
        (REAL, OTHER, False),  # a real set judged as unlike the product: not a failure
        (CATCH, OTHER, True),  # the unrelated set most similar
        (CATCH, REAL, True),
    ],
)
def test_ranking_check_fails_only_when_the_unrelated_set_is_most_similar(best, worst, failed):
    assert failed_check("ranking", [OTHER, CATCH, REAL], CATCH, {"best": best, "worst": worst}) is failed


def test_random_answers_fail_at_the_documented_rates():
    """Enumerate every answer a uniformly random responder can give: the rule's power per check."""
    rating = sum(failed_check("rating", [CATCH], CATCH, {"rating": r}) for r in range(1, 8))
    pairwise = sum(failed_check("pairwise", [REAL, CATCH], CATCH, {"choice": c}) for c in ("left", "right", "tie"))
    sets = [REAL, OTHER, "r3", CATCH, "r4"]
    pairs = [(b, w) for b in sets for w in sets if b != w]
    ranking = sum(failed_check("ranking", sets, CATCH, {"best": b, "worst": w}) for b, w in pairs)
    assert (rating, pairwise, ranking, len(pairs)) == (4, 1, 4, 20)  # 4/7, 1/3, 1/k with k = 5


def test_misuse_is_refused():
    with pytest.raises(ValueError, match="not among the grids shown"):
        failed_check("pairwise", [REAL, OTHER], CATCH, {"choice": "left"})
    with pytest.raises(ValueError, match="unknown protocol"):
        failed_check("triad", [CATCH], CATCH, {})
