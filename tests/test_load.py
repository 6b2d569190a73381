"""Many participants at once, on SQLite and on a real PostgreSQL server: bench/load.py's
participants (reloads, double clicks from two threads, resubmits, returning through the
recruitment link) leave every trial answered exactly once."""

from __future__ import annotations

import pytest

from bench.load import build_load_study, run_load


@pytest.mark.slow  # builds a study with EfficientNet weights (the PostgreSQL variant is slow anyway)
def test_concurrent_participants_lose_and_duplicate_nothing(db_url, small_catalog, feature_cache):
    build_load_study(db_url, small_catalog, feature_cache, trials=4)
    r = run_load(db_url, participants=24, seed=1)
    assert r["errors"] == 0, r["error_examples"]
    assert r["participants_stored"] == r["completed"] == 24  # nobody created twice, everyone finished
    assert r["answers_expected"] == r["answers_stored"] > 24 * 4
    assert r["lost"] == 0 and r["duplicates"] == 0
