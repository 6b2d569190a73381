"""Bootstrap helpers (survey.analysis.bootstrap): ranks from confidence intervals by hand."""

from __future__ import annotations

import numpy as np


def test_ranks_from_intervals_by_hand():
    from survey.analysis.bootstrap import ranks_from_intervals

    est = np.array([0.1, 1.0, 0.8, -1.0])
    lo = np.array([-0.2, 0.85, 0.5, -1.3])
    hi = np.array([0.4, 1.2, 0.9, -0.7])
    # 1.0 first; 0.8 overlaps it (0.85 <= 0.9): shares rank 1; 0.1 below 0.8's interval: rank 3; -1.0: rank 4
    assert list(ranks_from_intervals(est, lo, hi)) == [3, 1, 1, 4]
