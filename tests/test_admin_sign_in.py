"""The admin page's sign-in with AppTest: what a wrong password, a back-off and a lock-out say, the
attempts stored and logged, sign-out, and the sign-in that expires when idle. The limiter's rules:
tests/test_sign_ins.py; served through nginx with 200 passwords: tests/test_sign_in_served.py."""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from db.models import AdminSignIn
from tests.apptest import admin_page

PASSWORD = "correct horse battery"


def _submit(at, password: str):
    at.text_input[0].input(password)
    return at.button[0].click().run()


def test_wrong_passwords_back_off_then_lock_out_and_every_attempt_is_stored(tiny_study, monkeypatch, caplog):
    db, sessions, _ = tiny_study("signin")
    monkeypatch.setenv("LOOKALIKE_SIGN_IN_BACKOFF_S", "30")  # long enough that the test never waits one out
    caplog.set_level(logging.INFO, logger="lookalike.admin")
    at = admin_page(f"sqlite:///{db}", monkeypatch, PASSWORD)
    for _ in range(3):
        assert _submit(at, "guess").error[0].value == "Wrong password."
    assert _submit(at, "guess").error[0].value == "Wrong password. The next attempt is checked in 30 s."
    refused = _submit(at, PASSWORD)  # the right password, during the back-off: not even checked
    assert refused.error[0].value == (
        "Too many wrong passwords: this attempt was not checked. The next attempt is checked in 30 s."
    )
    assert not refused.metric and refused.get("button")[0].label == "Sign in"
    with sessions() as s:
        rows = s.execute(select(AdminSignIn.outcome, AdminSignIn.address, AdminSignIn.target)).all()
    assert [r[0] for r in rows] == ["failure"] * 4 + ["refused"]
    assert {(r[1], r[2]) for r in rows} == {("local", "admin")}  # AppTest has no client address
    logged = [r.getMessage() for r in caplog.records if r.name == "lookalike.admin"]
    assert len(logged) == 5 and not any(PASSWORD in x or "guess" in x for x in logged)  # never the password


def test_a_lock_out_says_until_when(tiny_study, monkeypatch):
    db, _, _ = tiny_study("locked")
    monkeypatch.setenv("LOOKALIKE_SIGN_IN_BACKOFF_S", "0")
    monkeypatch.setenv("LOOKALIKE_SIGN_IN_LOCKOUT_AFTER", "4")
    at = admin_page(f"sqlite:///{db}", monkeypatch, PASSWORD)
    for _ in range(3):
        _submit(at, "guess")
    message = _submit(at, "guess").error[0].value
    assert message.startswith("Wrong password. Sign-in is locked for this browser and address until ")
    assert message.endswith(" UTC (900 s).")


def test_sign_out_and_idle_expiry(tiny_study, monkeypatch):
    db, _, _ = tiny_study("signout")
    monkeypatch.setenv("LOOKALIKE_ADMIN_IDLE_MINUTES", "0.02")  # 1.2 s
    at = admin_page(f"sqlite:///{db}", monkeypatch, PASSWORD)
    _submit(at, PASSWORD)
    assert at.metric and at.button[0].label == "Sign out"
    at.button[0].click().run()  # Sign out
    assert not at.metric and at.text_input[0].label == "Password"
    _submit(at, PASSWORD)
    at.run()  # an action within the idle time keeps the sign-in
    assert at.metric
    time.sleep(1.5)
    at.run()
    assert not at.metric and at.text_input[0].label == "Password"
    assert at.info[0].value == "You were signed out after 0.02 minutes without activity."
