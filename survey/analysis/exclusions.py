"""Which participants are analysed: exclusion rules for failed attention checks, answers too fast and
unfinished studies, and the participant flow they leave."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ExclusionRules:
    failed_checks_max: int | None = 0  # exclude participants with more failed attention checks
    too_fast_max: int | None = None  # exclude participants with more too-fast answers
    require_complete: bool = True  # exclude participants who did not finish every trial
    consistency_min: float | None = None  # exclude participants agreeing with themselves on fewer repeats


@dataclass(frozen=True)
class ExclusionFlow:
    started: int
    completed: int
    excluded_failed_checks: int
    excluded_too_fast: int
    excluded_incomplete: int
    kept: int
    kept_ids: tuple[int, ...]
    excluded_inconsistent: int = 0  # test-retest consistency below consistency_min (repeat trials)


DEFAULT_RULES = ExclusionRules()


def apply_exclusions(participants: pd.DataFrame, rules: ExclusionRules = DEFAULT_RULES) -> ExclusionFlow:
    """Which participants are analysed. Rules apply in order (checks, speed, completeness,
    consistency); a participant is counted under the first rule that excludes them. Consistency:
    the participants table's ``consistency`` (share of repeat trials answered as the first time);
    a participant without answered repeats is not excluded by it."""
    missing = {"participant", "flags", "trials_done_at"} - set(participants.columns)
    if missing:
        raise ValueError(f"participants table lacks {sorted(missing)}; use survey.study.export.tables()")
    if rules.consistency_min is not None and "consistency" not in participants.columns:
        raise ValueError("participants table lacks 'consistency'; use survey.study.export.tables()")
    kept, failed, fast, incomplete, inconsistent = [], 0, 0, 0, 0
    completed = 0
    for row in participants.itertuples(index=False):
        flags = [f for f in (row.flags or "").split(";") if f]
        done = not pd.isna(row.trials_done_at)
        completed += done
        failed_checks = sum(f.startswith("failed_check:") for f in flags)
        too_fast = sum(f.startswith("too_fast:") for f in flags)
        if rules.failed_checks_max is not None and failed_checks > rules.failed_checks_max:
            failed += 1
        elif rules.too_fast_max is not None and too_fast > rules.too_fast_max:
            fast += 1
        elif rules.require_complete and not done:
            incomplete += 1
        elif (
            rules.consistency_min is not None
            and not pd.isna(row.consistency)
            and float(row.consistency) < rules.consistency_min
        ):
            inconsistent += 1
        else:
            kept.append(int(row.participant))
    return ExclusionFlow(len(participants), completed, failed, fast, incomplete, len(kept), tuple(kept), inconsistent)
