"""Exclusion rules (survey.analysis.exclusions): which participants each rule keeps."""

from __future__ import annotations

import pandas as pd

from survey.analysis.exclusions import ExclusionRules, apply_exclusions


def test_exclusion_rules_change_the_kept_set_exactly():
    p = pd.DataFrame(
        {
            "participant": [1, 2, 3, 4, 5],
            "flags": ["", "failed_check:3", "too_fast:1;too_fast:2", "", "failed_check:1;too_fast:4"],
            "bot_signals": [""] * 5,
            "trials_done_at": [
                pd.Timestamp("2026-01-01"),
                pd.Timestamp("2026-01-01"),
                pd.Timestamp("2026-01-01"),
                pd.NaT,
                pd.Timestamp("2026-01-01"),
            ],
        }
    )
    default = apply_exclusions(p)
    assert default.kept_ids == (1, 3) and (default.excluded_failed_checks, default.excluded_incomplete) == (2, 1)
    strict = apply_exclusions(p, ExclusionRules(too_fast_max=1))
    assert strict.kept_ids == (1,) and strict.excluded_too_fast == 1
    lenient = apply_exclusions(p, ExclusionRules(failed_checks_max=None, require_complete=False))
    assert lenient.kept_ids == (1, 2, 3, 4, 5)
    assert (default.started, default.completed) == (5, 4)
