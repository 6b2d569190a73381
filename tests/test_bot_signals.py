"""Signals of automated participants (survey/participants/bot_signals.py): the response-time rule
against an independent computation and by simulation, identical answer sequences, what the browser
reports, the project's browser tests exempt, the export's column, the exclusion rule and the
report's section. The served browser's part is in tests/test_accessibility.py."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from db.models import Participant, utcnow
from survey.analysis.exclusions import ExclusionRules, apply_exclusions
from survey.analysis.report import participants_section
from survey.participants import bot_signals, service
from survey.study.export import tables

STUDY = {"references_per_category": 2, "trials_per_participant": 8, "ask_comment": False}


def test_time_variation_is_the_sample_coefficient_of_variation():
    times = [2100, 3400, 2950, 5100, 1800, 4020, 2600, 3300]
    assert bot_signals.time_variation(times) == pytest.approx(np.std(times, ddof=1) / np.mean(times))
    assert bot_signals.time_variation(times[:7]) is None  # too few answers to judge


def test_the_time_rule_flags_scripts_and_no_simulated_person():
    """People: log-normal response times (sigma 0.35, narrower than the 0.5-0.8 usually measured, so
    the check is conservative); a script: a fixed wait plus up to 5 % jitter and 0-200 ms latency."""
    rng = np.random.default_rng(24)
    n, runs = bot_signals.MIN_ANSWERS, 20_000
    people = rng.lognormal(np.log(4000), 0.35, (runs, n)).astype(int)
    scripts = (3000 * rng.uniform(0.95, 1.05, (runs, n)) + rng.uniform(0, 200, (runs, n))).astype(int)
    flagged = [
        np.mean([bot_signals.time_variation(r.tolist()) < bot_signals.MAX_TIME_CV for r in x])
        for x in (people, scripts)
    ]
    assert flagged[0] < 1e-3  # false positives among people
    assert flagged[1] > 0.99  # scripts caught


def _take(sessions, study_id: int, ratings: list[int], gaps_ms: list[int], **start) -> str:
    token = service.start_participant(sessions, study_id, {}, np.random.default_rng(len(ratings)), **start)
    service.finish_instructions(sessions, token)
    now = utcnow()
    i = 0
    while (state := service.participant_state(sessions, token)).stage == "trial":
        service.mark_shown(sessions, token, state.trial.trial_id, now=now)
        now += timedelta(milliseconds=gaps_ms[i % len(gaps_ms)])
        service.submit_rating(sessions, token, state.trial.trial_id, ratings[i % len(ratings)], now=now)
        i += 1
    assert i >= bot_signals.MIN_ANSWERS
    return token


def _signals(sessions, token: str) -> list[str]:
    with sessions() as s:
        from sqlalchemy import select

        return s.scalar(select(Participant.bot_signals).where(Participant.token == token))


def test_answers_show_constant_times_and_identical_sequences(tiny_study):
    _, sessions, study = tiny_study("bots", **STUDY)
    human = [3100, 5400, 2200, 8900, 4100, 2700, 6300, 3900]
    same = [5, 3, 6, 2, 4, 4, 7, 1]
    a = _take(sessions, study.id, same, human)
    b = _take(sessions, study.id, [4, 6, 2, 5, 3, 5, 1, 7], human)
    assert _signals(sessions, a) == _signals(sessions, b) == []  # different answers, varied times
    c = _take(sessions, study.id, same, [3000])  # a script: a's answers at a constant pace
    assert _signals(sessions, c) == ["constant_times", "identical_answers"]
    assert _signals(sessions, a) == ["identical_answers"]  # the earlier participant is flagged too
    assert _signals(sessions, b) == []
    test = _take(sessions, study.id, same, [3000], browser_test=True)  # the project's own browser test
    assert _signals(sessions, test) == []
    people = tables(sessions, study.id)["participants"].set_index("browser_test")
    assert sorted(people.loc[False, "bot_signals"]) == ["", "constant_times;identical_answers", "identical_answers"]
    assert people.loc[True, "bot_signals"] == ""


def test_what_the_browser_reports_is_stored_once_and_checked(tiny_study):
    _, sessions, study = tiny_study("browser", **STUDY)
    token = service.start_participant(sessions, study.id, {})
    bot_signals.record_browser_signals(sessions, token, ["webdriver"])
    bot_signals.record_browser_signals(sessions, token, ["webdriver", "honeypot"])
    assert _signals(sessions, token) == ["honeypot", "webdriver"]
    with pytest.raises(ValueError, match="a browser may report only"):
        bot_signals.record_browser_signals(sessions, token, ["constant_times"])  # computed here, not reported
    with pytest.raises(PermissionError, match="unknown participant token"):
        bot_signals.record_browser_signals(sessions, "nobody", ["webdriver"])
    marked = service.start_participant(sessions, study.id, {}, browser_test=True)
    bot_signals.record_browser_signals(sessions, marked, ["webdriver"])
    assert _signals(sessions, marked) == []


def _people(signals: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "participant": range(1, len(signals) + 1),
            "flags": [""] * len(signals),
            "trials_done_at": [pd.Timestamp("2026-12-07")] * len(signals),
            "bot_signals": signals,
        }
    )


def test_suspected_bots_are_counted_always_and_excluded_on_request():
    people = _people(["", "webdriver", "webdriver;honeypot", "", "identical_answers"])
    kept = apply_exclusions(people)
    assert (kept.kept, kept.suspected_bots, kept.excluded_suspected_bots) == (5, 3, 0)
    assert kept.bot_signals == (("webdriver", 2), ("honeypot", 1), ("identical_answers", 1))
    excluded = apply_exclusions(people, ExclusionRules(exclude_suspected_bots=True))
    assert (excluded.kept, excluded.kept_ids, excluded.excluded_suspected_bots) == (2, (1, 4), 3)
    section = participants_section(excluded)
    assert "3 participant(s) showed at least one signal of automation; 3 of them excluded" in section
    assert "<td>webdriver</td><td>2</td>" in section.replace("\n", "")
    assert "No participant showed a signal of automation" in participants_section(apply_exclusions(_people(["", ""])))
    with pytest.raises(ValueError, match="bot_signals"):
        apply_exclusions(people.drop(columns="bot_signals"))
