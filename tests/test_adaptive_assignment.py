"""Adaptive pairs through the participant service (pairwise_assignment = "adaptive"), on a copy of the
shared built study: simulated participants get their pairwise units from the recorded adaptive
choice, `lookalike study replay` redoes every choice identically, and it fails when a recorded
choice or what the fit saw is changed; starts from several engines at once (as from several app
processes) each choose from counts that hold every earlier participant's units; the report says
which fit and interval it used; the study file refuses the option where it cannot apply."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import select, update

from db.engine import make_engine, make_sessionmaker
from db.models import AdaptiveChoice, AdaptivePlan, Participant, Study, Trial
from survey.analysis.simulate import simulate
from survey.cli import main
from survey.participants import planning, service
from survey.study.config import ConfigError, StudyConfig


def _make_adaptive(make_session, study_id: int, floor: int = 1) -> StudyConfig:
    with make_session.begin() as s:
        study = s.get(Study, study_id)
        config = {**study.config, "pairwise_assignment": "adaptive", "pairwise_adaptive_floor": floor}
        s.execute(update(Study).where(Study.id == study_id).values(config=config))
    return service.study_config(make_session, study_id)


def _simulated(study_db):
    url, make_session, _ = study_db
    study = service.current_study(make_session)
    config = _make_adaptive(make_session, study.id)
    sim = simulate(make_session, study.id, 24, seed=5)
    return url, make_session, study, config, sim


@pytest.fixture
def adaptive_study(sqlite_study_db):
    """The built study made adaptive (floor 1) and answered by 24 simulated participants, in SQLite."""
    return _simulated(sqlite_study_db)


@pytest.fixture
def adaptive_study_any_db(study_db):
    """The same in SQLite and in PostgreSQL (the study-row lock differs: write lock, row lock)."""
    return _simulated(study_db)


def _replays(make_session, study_id, config):
    with make_session() as s:
        return planning.replay_adaptive(s, study_id, config)


def test_a_simulated_adaptive_study_replays_exactly(adaptive_study, capsys):
    url, make_session, study, config, sim = adaptive_study
    replays = _replays(make_session, study.id, config)
    assert [r.participant_id for r in replays] == list(sim.participants)  # every participant was chosen for
    assert all(r.ok for r in replays), [r.problems for r in replays if not r.ok]
    with make_session() as s:
        phases = Counter(s.scalars(select(AdaptiveChoice.phase)))
        seeds = set(s.scalars(select(AdaptivePlan.seed)))
        gains = s.scalars(select(AdaptiveChoice.gain).where(AdaptiveChoice.phase == "adaptive")).all()
        pairwise = s.scalars(
            select(Trial).where(Trial.protocol == "pairwise", Trial.is_catch.is_(False), Trial.is_repeat.is_(False))
        ).all()
    assert phases["floor"] > 0 and phases["adaptive"] > phases["floor"]  # past the floor, the fit chooses
    assert len(seeds) == len(replays)  # a seed of its own per participant, drawn from the service's generator
    assert all(g is not None and g > 0 for g in gains)
    # left and right stay counterbalanced: each unit's first grid takes the left on alternate showings
    by_unit: dict[str, list[str]] = {}
    for t in sorted(pairwise, key=lambda t: t.id):
        by_unit.setdefault(t.unit, []).append(t.grid_ids[0])
    assert all(left[0::2].count(left[0]) == len(left[0::2]) for left in by_unit.values())
    assert all(left[0] not in left[1::2] for left in by_unit.values())
    assert main(["study", "replay", "--db", url]) == 0
    assert f"{len(replays)} of {len(replays)} participants' adaptive choices" in capsys.readouterr().out


def test_the_replay_fails_when_a_recorded_choice_or_state_is_changed(adaptive_study, capsys):
    url, make_session, study, config, _ = adaptive_study
    with make_session.begin() as s:
        choice = s.scalars(
            select(AdaptiveChoice).where(AdaptiveChoice.phase == "adaptive").order_by(AdaptiveChoice.participant_id)
        ).first()
        others = set(
            s.scalars(select(AdaptiveChoice.unit).where(AdaptiveChoice.participant_id == choice.participant_id))
        )
        spare = next(u for u in s.scalars(select(Trial.unit).where(Trial.protocol == "pairwise")) if u not in others)
        changed, was = choice.participant_id, choice.unit
        choice.unit = spare
    bad = [r for r in _replays(make_session, study.id, config) if not r.ok]
    assert [r.participant_id for r in bad] == [changed]
    assert not bad[0].choices_match and not bad[0].trials_match and bad[0].state_matches
    assert main(["study", "replay", "--db", url]) == 1
    assert f"participant {changed}: recorded choices" in capsys.readouterr().out
    with make_session.begin() as s:  # put it back, then change what the fit saw
        s.execute(
            update(AdaptiveChoice).where(AdaptiveChoice.participant_id == changed, AdaptiveChoice.unit == spare),
            {"unit": was},
        )
        plan = s.scalars(select(AdaptivePlan).where(AdaptivePlan.last_response_id.is_not(None))).all()[-1]
        wins = [row[:] for row in plan.wins]
        wins[0][1] += 1
        plan.wins = wins
        touched = plan.participant_id
    bad = [r for r in _replays(make_session, study.id, config) if not r.ok]
    assert [r.participant_id for r in bad] == [touched] and not bad[0].state_matches


def test_starts_from_several_engines_choose_from_every_earlier_participants_units(adaptive_study_any_db):
    url, make_session, study, config, sim = adaptive_study_any_db
    errors: list[BaseException] = []

    def start(worker: int) -> None:  # one engine per thread: what separate app processes have
        engine = make_engine(url)
        try:
            for i in range(3):
                rng = np.random.default_rng([worker, i])
                service.start_participant(make_sessionmaker(engine), study.id, {}, rng)
        except BaseException as exc:  # collected and re-raised by the test below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with make_session() as s:
        plans = s.scalars(select(AdaptivePlan).order_by(AdaptivePlan.participant_id)).all()
        trials = s.execute(
            select(Trial.participant_id, Trial.unit).where(
                Trial.protocol == "pairwise", Trial.is_catch.is_(False), Trial.is_repeat.is_(False)
            )
        ).all()
        statuses = set(s.scalars(select(Participant.status)))
    assert len(plans) == len(sim.participants) + 12 and statuses <= {"active", "completed"}
    for plan in plans:  # nobody left: the counts a choice read = the trials of everyone before
        before = Counter(unit for pid, unit in trials if pid < plan.participant_id)
        assert plan.counts == dict(before), plan.participant_id
    assert all(r.ok for r in _replays(make_session, study.id, config))


def test_the_option_is_refused_where_it_cannot_apply(small_catalog):
    base = {"name": "x", "catalog": str(small_catalog), "protocols": ("rating", "pairwise")}
    assert StudyConfig(**base, pairwise_assignment="adaptive").pairwise_adaptive_floor == 4
    with pytest.raises(ConfigError, match=r'"adaptive" chooses the units of the pairwise protocol.*\[\'rating\'\]'):
        StudyConfig(**{**base, "protocols": ("rating",)}, pairwise_assignment="adaptive")
    with pytest.raises(ConfigError, match='"uniform" or "adaptive"'):
        StudyConfig(**base, pairwise_assignment="greedy")
    with pytest.raises(ConfigError, match="pairwise_adaptive_floor: 1 to 50"):
        StudyConfig(**base, pairwise_assignment="adaptive", pairwise_adaptive_floor=0)
    with pytest.raises(ConfigError, match="judgements_per_unit"):
        StudyConfig(**base, pairwise_assignment="adaptive", judgements_per_unit=5)


def test_the_report_of_an_adaptive_study_uses_firths_fit_with_wald_intervals(adaptive_study):
    from scipy.stats import norm

    from survey.analysis.bradley_terry import win_matrix
    from survey.analysis.exclusions import DEFAULT_RULES, apply_exclusions
    from survey.analysis.report import render_html
    from survey.analysis.results import compute_results
    from survey.participants.bradley_terry_firth import covariance, firth_bradley_terry
    from survey.study.export import tables

    _, make_session, study, _, _ = adaptive_study
    r = compute_results(make_session, study.id, n_boot=50)
    assert r.bradley_terry_interval == "adaptive assignment (floor 1): Firth's bias-reduced fit, Wald CI"
    assert "Strengths: adaptive assignment (floor 1): Firth&#x27;s bias-reduced fit, Wald CI." in render_html(r)
    # recomputed from the report's own win matrix (its row-by-row code, not the per-participant one)
    tidy = tables(make_session, study.id)
    kept = tidy["judgements"][
        tidy["judgements"]["participant"].isin(apply_exclusions(tidy["participants"], DEFAULT_RULES).kept_ids)
    ]
    wins = win_matrix(kept)
    s = firth_bradley_terry(wins.to_numpy())
    half = norm.ppf(0.975) * np.sqrt(np.diag(covariance(s, wins.to_numpy())))
    got = {e.condition: e for e in r.bradley_terry}
    for i, c in enumerate(wins.index):
        assert got[c].strength == pytest.approx(s[i], abs=1e-9)
        assert (got[c].ci_low, got[c].ci_high) == pytest.approx((s[i] - half[i], s[i] + half[i]), abs=1e-9)
