"""Attention checks: which answer to a catch trial fails it.

A catch trial shows the study's catch grid for the reference: products of another category. Every
other grid on a check screen comes from the reference's own category (retrieval searches within
it; :func:`survey.participants.assignment.catch_units` places the catch grid beside real grids of the same
reference). A check should fail only on an answer that no attentive person gives, so that
excluding on it removes careless responders and not attentive people who judged what they saw:

* calling the unrelated set similar, or
* judging it *more* similar than a set of the product's own category.

An answer that places the unrelated set *level* with a real set does not fail. Participants judge
how products look (shape, colour, pattern, style), and a real set can look as unlike the product as
the unrelated one (for a red striped mug: plain white mugs beside red striped scarves). Failing
those answers would exclude attentive people for the quality of the grids they happened to be
shown, which ties the exclusions to the conditions being compared. Per protocol:

* rating: a rating above :data:`CATCH_RATING_MAX` (4 "somewhat similar" or more) fails;
* pairwise: choosing the unrelated set fails; "equally similar" does not (both sets judged equally
  unlike the product);
* ranking (best-worst): choosing the unrelated set as the most similar fails; not choosing it as
  the least similar does not (best-worst has no "equally": with a real set as unlike the product
  as the unrelated one, either may be picked as least similar).

The rule stays strict enough to catch random responders: a uniformly random answer fails a rating
check with probability 4/7, a pairwise check 1/3 and a ranking check of k sets 1/k; with one check
per protocol (the test study: ranking checks of 4 or 5 sets) 77 to 79 % of random responders fail
at least one. ``tests/test_simulate.py`` measures the precision and recall of exclusion on this
rule over simulated participants, attentive and random.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: A catch grid rated above this ("4 · somewhat similar" or more) fails a rating check.
CATCH_RATING_MAX = 3


def failed_check(protocol: str, grid_ids: Sequence[str], catch: str, answer: Mapping[str, Any]) -> bool:
    """Whether ``answer`` fails the attention check showing ``grid_ids`` (display order), of which
    ``catch`` is the catch grid. ``answer`` holds the stored columns of the protocol: ``rating``;
    ``choice`` ('left', 'right' or 'tie'); ``best`` and ``worst`` (grid ids)."""
    if catch not in grid_ids:
        raise ValueError(f"catch grid {catch!r} is not among the grids shown {list(grid_ids)}")
    if protocol == "rating":
        return bool(answer["rating"] > CATCH_RATING_MAX)
    if protocol == "pairwise":
        return bool(answer["choice"] == ("left" if grid_ids[0] == catch else "right"))
    if protocol == "ranking":
        return bool(answer["best"] == catch)
    raise ValueError(f"protocol must be rating, pairwise or ranking, got {protocol!r}")
