"""Which participants are analysed: exclusion rules for failed attention checks, answers too fast,
suspected automated participants (off by default) and unfinished studies, and the participant flow
they leave."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ExclusionRules:
    failed_checks_max: int | None = 0  # exclude participants with more failed attention checks
    too_fast_max: int | None = None  # exclude participants with more too-fast answers
    require_complete: bool = True  # exclude participants who did not finish every trial
    consistency_min: float | None = None  # exclude participants agreeing with themselves on fewer repeats
    #: exclude participants with any signal of automation (survey/participants/bot_signals.py)
    exclude_suspected_bots: bool = False


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
    suspected_bots: int = 0  # participants with at least one signal of automation, excluded or not
    #: (signal, participants with it), most frequent first; a participant may have several
    bot_signals: tuple[tuple[str, int], ...] = ()
    excluded_suspected_bots: int = 0  # with ExclusionRules.exclude_suspected_bots


DEFAULT_RULES = ExclusionRules()


def apply_exclusions(participants: pd.DataFrame, rules: ExclusionRules = DEFAULT_RULES) -> ExclusionFlow:
    """Which participants are analysed. Rules apply in order (checks, speed, suspected bots,
    completeness, consistency); a participant is counted under the first rule that excludes them.
    Suspected bots: the participants table's ``bot_signals`` is not empty. Consistency:
    the participants table's ``consistency`` (share of repeat trials answered as the first time);
    a participant without answered repeats is not excluded by it."""
    missing = {"participant", "flags", "trials_done_at", "bot_signals"} - set(participants.columns)
    if missing:
        raise ValueError(f"participants table lacks {sorted(missing)}; use survey.study.export.tables()")
    if rules.consistency_min is not None and "consistency" not in participants.columns:
        raise ValueError("participants table lacks 'consistency'; use survey.study.export.tables()")
    kept, failed, fast, bots, incomplete, inconsistent = [], 0, 0, 0, 0, 0
    completed = 0
    signals: Counter[str] = Counter()
    for row in participants.itertuples(index=False):
        flags = [f for f in (row.flags or "").split(";") if f]
        suspected = [s for s in (row.bot_signals or "").split(";") if s]
        signals.update(suspected)
        done = not pd.isna(row.trials_done_at)
        completed += done
        failed_checks = sum(f.startswith("failed_check:") for f in flags)
        too_fast = sum(f.startswith("too_fast:") for f in flags)
        if rules.failed_checks_max is not None and failed_checks > rules.failed_checks_max:
            failed += 1
        elif rules.too_fast_max is not None and too_fast > rules.too_fast_max:
            fast += 1
        elif rules.exclude_suspected_bots and suspected:
            bots += 1
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
    n_suspected = int(sum(bool(s) for s in participants["bot_signals"].fillna("")))
    return ExclusionFlow(
        len(participants),
        completed,
        failed,
        fast,
        incomplete,
        len(kept),
        tuple(kept),
        inconsistent,
        suspected_bots=n_suspected,
        bot_signals=tuple(sorted(signals.items(), key=lambda kv: (-kv[1], kv[0]))),
        excluded_suspected_bots=bots,
    )
