"""The admin sign-in's attempt limiter: exponential back-off, then a lock-out, per browser session and
per client address, counted in the database so that every app process behind nginx sees every attempt.

Rules (:func:`gate`, a pure function of one key's evaluated attempts), with the numbers of
:class:`survey.settings.SignInSettings`: a *streak* is the failures of a key (a browser session or
an address) since its last success, the end of its last lock-out, or a quiet ``lockout_minutes``
without failures. The first ``free_attempts`` failures of a streak cost nothing; after the k-th
further one the key waits ``backoff_s * 2**(k-1)`` from that failure; the ``lockout_after``-th failure
locks the key out for ``lockout_minutes``. An attempt is evaluated only when both its session and its
address are open; otherwise it is *refused*: recorded, not evaluated, and not counted against either.
With the defaults (3 free, 1 s doubling, 10 then 15 minutes) an attacker who tries as fast as the
limiter allows gets 9 passwords evaluated in the first minute (4 at once, then after 1, 2, 4, 8 and
16 s), the 10th after 63 s, and then none for 15 minutes: 10 per 16 minutes per address, however
many browser sessions it opens (tests/test_sign_ins.py replays this).

Every attempt is a row of ``admin_sign_ins`` and a line of the ``lookalike.admin`` log (time, address,
session, target, outcome; never the password). :func:`attempt` decides and records in one transaction
that it holds alone (a PostgreSQL advisory lock; SQLite's write lock): without that, many sign-ins
sent at once over separate connections would all read the same count before any was written, and all
be evaluated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from db.models import AdminSignIn, utcnow
from survey.settings import SignInSettings

log = logging.getLogger("lookalike.admin")

Outcome = Literal["success", "failure", "refused"]
Target = Literal["admin", "preview"]
#: The PostgreSQL advisory lock that makes sign-in decisions one at a time (any constant of our own).
ADVISORY_LOCK = 0x4C4B_5349  # "LKSI"


@dataclass(frozen=True)
class Gate:
    """Whether a key (a browser session or an address) may have its next attempt evaluated."""

    open_at: datetime | None  # None: now; else not before this time
    locked: bool  # a lock-out (rather than a back-off) holds it until ``open_at``
    streak: int  # failures counted against it now


@dataclass(frozen=True)
class Verdict:
    """What one attempt came to, and when the next one of this browser session and address is evaluated."""

    outcome: Outcome
    retry_at: datetime | None
    locked: bool


def gate(attempts: Sequence[tuple[datetime, str]], now: datetime, policy: SignInSettings) -> Gate:
    """The gate of one key after its evaluated ``attempts`` (time, ``success`` or ``failure``; refused
    ones are ignored), at ``now``. Pure: the rules are in the module docstring."""
    quiet = timedelta(minutes=policy.sign_in_lockout_minutes)
    streak, last_failure, locked_until = 0, None, None
    for at, outcome in sorted(attempts):
        if outcome == "refused":
            continue
        if locked_until is not None and at >= locked_until:
            streak, locked_until = 0, None  # a lock-out that ended starts a new streak
        if outcome == "success":
            streak = 0
            continue
        if last_failure is not None and at - last_failure >= quiet:
            streak = 0
        streak, last_failure = streak + 1, at
        if streak >= policy.sign_in_lockout_after:
            locked_until = at + quiet
    if locked_until is not None and now < locked_until:
        return Gate(locked_until, True, streak)
    if locked_until is not None or last_failure is None or now - last_failure >= quiet:
        return Gate(None, False, 0)
    extra = streak - policy.sign_in_free_attempts
    if extra <= 0:
        return Gate(None, False, streak)
    open_at = last_failure + timedelta(seconds=policy.sign_in_backoff_s * 2 ** (extra - 1))
    return Gate(open_at if open_at > now else None, False, streak)


def _closed(gates: list[Gate]) -> list[Gate]:
    return [g for g in gates if g.open_at is not None]


def history_start(now: datetime, policy: SignInSettings) -> datetime:
    """How far back :func:`gate` needs a key's attempts: a streak of fewer than ``lockout_after``
    failures, each within ``lockout_minutes`` of the last, then its lock-out."""
    return now - timedelta(minutes=policy.sign_in_lockout_minutes * (policy.sign_in_lockout_after + 1))


def attempt(
    make_session: sessionmaker[Session],
    *,
    address: str,
    browser_session: str,
    target: Target,
    check: Callable[[], bool],
    policy: SignInSettings,
    now: Callable[[], datetime] = utcnow,
) -> Verdict:
    """One sign-in attempt: ``check()`` (the constant-time comparison) runs only if the session's and
    the address's gates are open; the attempt is recorded and logged whatever its outcome."""
    with make_session.begin() as s:
        _hold_the_sign_in_lock(s)
        at = now()
        rows = s.execute(
            select(AdminSignIn.attempted_at, AdminSignIn.outcome, AdminSignIn.address, AdminSignIn.browser_session)
            .where(or_(AdminSignIn.address == address, AdminSignIn.browser_session == browser_session))
            .where(AdminSignIn.attempted_at >= history_start(at, policy), AdminSignIn.outcome != "refused")
        ).all()
        by_address = [(_aware(r[0]), r[1]) for r in rows if r[2] == address]
        by_session = [(_aware(r[0]), r[1]) for r in rows if r[3] == browser_session]
        before = [gate(by_address, at, policy), gate(by_session, at, policy)]
        outcome: Outcome = "refused" if _closed(before) else ("success" if check() else "failure")
        s.add(
            AdminSignIn(
                attempted_at=at, address=address, browser_session=browser_session, target=target, outcome=outcome
            )
        )
    # when the next attempt is evaluated: the gates as they were (refused), or after this attempt
    after = (
        before if outcome == "refused" else [gate([*h, (at, outcome)], at, policy) for h in (by_address, by_session)]
    )
    closed = _closed(after)
    retry_at = max((g.open_at for g in closed if g.open_at is not None), default=None)
    locked = any(g.locked for g in closed)
    log.log(
        logging.INFO if outcome == "success" else logging.WARNING,
        "admin sign-in %s: target=%s address=%s session=%s at=%s%s",
        outcome,
        target,
        address,
        browser_session,
        at.isoformat(timespec="milliseconds"),
        f" next attempt evaluated from {retry_at.isoformat(timespec='seconds')}" + (" (locked out)" if locked else "")
        if retry_at
        else "",
    )
    return Verdict(outcome, retry_at, locked)


def _hold_the_sign_in_lock(s: Session) -> None:
    """Until this transaction ends, no other process decides a sign-in (see the module docstring)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
    else:  # SQLite: a write takes the database's write lock for the rest of the transaction
        s.execute(text("UPDATE admin_sign_ins SET id = id WHERE 0"))


def _aware(at: datetime) -> datetime:
    """SQLite hands stored times back without their zone; they were written in UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=utcnow().tzinfo)


def recent(make_session: sessionmaker[Session], since: datetime) -> list[AdminSignIn]:
    """Every attempt since ``since``, oldest first (tests, and a researcher reading the log)."""
    with make_session() as s:
        return list(s.scalars(select(AdminSignIn).where(AdminSignIn.attempted_at >= since).order_by(AdminSignIn.id)))
