"""The admin sign-in limiter (survey/study/sign_ins.py): its rules replayed by hand with a clock the
test sets, the per-session and per-address counts, the log, and decisions that stay one at a time
when many attempts arrive at once (SQLite and a real PostgreSQL server)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker
from db.models import AdminSignIn
from survey.settings import SettingsError, SignInSettings
from survey.study import sign_ins
from survey.study.sign_ins import gate

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
POLICY = SignInSettings()  # 3 free, 1 s doubling, lock-out after 10 for 15 minutes


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def _fastest_attacker(policy: SignInSettings, horizon_s: float) -> list[float]:
    """When an attacker who tries again the moment the gate opens gets a wrong password evaluated
    (seconds from the first), over ``horizon_s``; only :func:`gate` decides."""
    history: list[tuple[datetime, str]] = []
    now = 0.0
    while now < horizon_s:
        g = gate(history, _at(now), policy)
        if g.open_at is not None:
            now = (g.open_at - T0).total_seconds()
            continue
        history.append((_at(now), "failure"))
    return [(at - T0).total_seconds() for at, _ in history]


def test_the_fastest_attacker_gets_the_schedule_worked_out_by_hand():
    times = _fastest_attacker(POLICY, 3600)
    # 3 free failures and the 4th at once; waits of 1, 2, 4, 8, 16, 32 s; the 10th locks out for 900 s
    first = [0, 0, 0, 0, 1, 3, 7, 15, 31, 63]
    assert times[:10] == first
    assert times[10:20] == [963 + t for t in first]  # after the lock-out: a new streak, the same schedule
    assert len([t for t in times if t < 60]) == 9  # the most in any minute
    assert max(sum(1 for t in times if a <= t < a + 60) for a in times) == 9
    assert len(times) == 40  # an hour: 10 per 963 s (3,600 / 963 = 3.7 cycles)


def test_gate_rules_success_quiet_period_and_refused_attempts():
    fails = [(_at(i), "failure") for i in range(5)]
    g = gate(fails, _at(5), POLICY)
    assert g.streak == 5 and not g.locked and g.open_at == _at(4 + 2)  # the 5th failure waits 2 s
    assert gate([*fails, (_at(5), "success")], _at(5), POLICY) == sign_ins.Gate(None, False, 0)
    assert gate([*fails, (_at(5.5), "refused")], _at(5.5), POLICY) == g  # refused ones do not count
    quiet = 15 * 60
    assert gate(fails, _at(4 + quiet), POLICY).streak == 0  # a quiet lock-out period forgives
    later = [*fails, (_at(4 + quiet), "failure")]
    assert gate(later, _at(4 + quiet), POLICY).streak == 1
    ten = [(_at(i * 0.5), "failure") for i in range(10)]
    locked = gate(ten, _at(10), POLICY)
    assert locked.locked and locked.open_at == _at(4.5 + quiet)
    assert gate(ten, _at(4.5 + quiet), POLICY) == sign_ins.Gate(None, False, 0)  # over: a new streak


def test_settings_are_checked_and_read_from_the_environment():
    s = SignInSettings.from_env({"LOOKALIKE_SIGN_IN_LOCKOUT_MINUTES": "0.5", "LOOKALIKE_ADMIN_IDLE_MINUTES": "5"})
    assert s.sign_in_lockout_minutes == 0.5 and s.admin_idle_minutes == 5 and s.sign_in_free_attempts == 3
    with pytest.raises(SettingsError, match="LOOKALIKE_SIGN_IN_FREE_ATTEMPTS='three' is not a whole number"):
        SignInSettings.from_env({"LOOKALIKE_SIGN_IN_FREE_ATTEMPTS": "three"})
    with pytest.raises(SettingsError, match="LOOKALIKE_SIGN_IN_BACKOFF_S must be at least 0, got -1.0"):
        SignInSettings.from_env({"LOOKALIKE_SIGN_IN_BACKOFF_S": "-1"})
    with pytest.raises(SettingsError, match="LOOKALIKE_SIGN_IN_LOCKOUT_AFTER .3. must be larger than"):
        SignInSettings.from_env({"LOOKALIKE_SIGN_IN_LOCKOUT_AFTER": "3"})


def _try(make_session, clock, *, address="203.0.113.7", session="s1", right=False):
    return sign_ins.attempt(
        make_session,
        address=address,
        browser_session=session,
        target="admin",
        check=lambda: right,
        policy=POLICY,
        now=clock,
    )


def test_attempts_are_limited_per_session_and_per_address_and_all_recorded(make_session, caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="lookalike.admin")
    outcomes = [_try(make_session, clock, session=f"fresh-{i}").outcome for i in range(6)]
    # a new browser session per attempt does not help: the address is counted too
    assert outcomes == ["failure"] * 4 + ["refused"] * 2
    # nor a new address per attempt: the browser session is counted too
    roaming = [_try(make_session, clock, address=f"198.51.100.{i}", session="roamer") for i in range(5)]
    assert [v.outcome for v in roaming] == ["failure"] * 4 + ["refused"] and roaming[-1].retry_at == _at(1)
    assert _try(make_session, clock, address="192.0.2.1", session="another").outcome == "failure"  # others try
    clock.advance(1)
    assert _try(make_session, clock, session="fresh-9", right=True).outcome == "success"
    assert _try(make_session, clock, session="fresh-9").outcome == "failure"  # the success reset the streak
    with make_session() as s:
        rows = s.execute(select(AdminSignIn.address, AdminSignIn.browser_session, AdminSignIn.outcome)).all()
    assert len(rows) == 14 and [r[2] for r in rows].count("refused") == 3
    lines = [r.getMessage() for r in caplog.records if r.name == "lookalike.admin"]
    assert len(lines) == 14 and all("address=" in x and "session=" in x and "at=2026-12-07T09:00" in x for x in lines)
    assert lines[4].startswith("admin sign-in refused: target=admin address=203.0.113.7 session=fresh-4")


def test_lock_out_refuses_the_right_password_until_it_ends(make_session):
    clock = Clock()
    for _ in range(9):
        v = _try(make_session, clock)
        assert v.outcome == "failure" and not v.locked
        clock.t = v.retry_at or clock.t
    assert clock.t == _at(63)  # the hand-worked schedule above
    v = _try(make_session, clock)
    assert v.outcome == "failure" and v.locked and v.retry_at == _at(63 + 15 * 60)
    clock.advance(15 * 60 - 1)
    refused = _try(make_session, clock, right=True)
    assert refused.outcome == "refused" and refused.locked
    clock.advance(1)
    assert _try(make_session, clock, right=True).outcome == "success"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_simultaneous_attempts_are_decided_one_at_a_time(kind, tmp_path, request):
    """50 attempts at once from 50 threads (separate connections), on a frozen clock: exactly the 4
    that the rules allow are evaluated; without the lock each would read the count before any write."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    if kind == "postgresql":
        url = request.getfixturevalue("postgres").create_database()
    engine = make_engine(url)
    make_session = make_sessionmaker(engine)
    clock, evaluated, start = Clock(), [], threading.Barrier(50)

    def one(i: int) -> None:
        start.wait()
        sign_ins.attempt(
            make_session,
            address="203.0.113.9",
            browser_session=f"s{i}",
            target="admin",
            check=lambda: evaluated.append(i) or False,
            policy=POLICY,
            now=clock,
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with make_session() as s:
        outcomes = list(s.scalars(select(AdminSignIn.outcome)))
    engine.dispose()
    assert len(evaluated) == 4 and sorted(outcomes) == ["failure"] * 4 + ["refused"] * 46
