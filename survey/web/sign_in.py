"""The admin sign-in as the web app sees it: who is asking (client address, browser session), the
sign-in form with its limiter (survey/study/sign_ins.py), idle expiry and sign-out, and the check of
the admin page's preview link.

The client's address: behind the nginx that ``lookalike serve --processes N`` generates
(``Settings.behind_proxy``), the ``X-Real-IP`` header that nginx sets from the connection's own
address, overwriting whatever the client sent; nothing a client writes in ``X-Forwarded-For``
reaches it. Otherwise the WebSocket's peer address as Streamlit reports it (``local`` for this
machine). Never a header a client could choose, so changing one cannot reset the limit.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from db.models import utcnow
from survey.settings import SignInSettings
from survey.study import sign_ins
from survey.web import preview, state

log = logging.getLogger("lookalike.admin")
REAL_IP_HEADER = "X-Real-IP"


def client_address(behind_proxy: bool) -> str:
    """The address sign-in attempts are counted under (see the module docstring)."""
    if behind_proxy:
        value = st.context.headers.get(REAL_IP_HEADER)
        if value:
            try:
                return str(ipaddress.ip_address(value.strip()))
            except ValueError:
                raise RuntimeError(
                    f"the {REAL_IP_HEADER} header from nginx is not an address: {value[:80]!r}; the app "
                    "processes of `lookalike serve --processes N` must only be reached through its nginx"
                ) from None
        # no header: a connection straight to the app process's port, which listens on 127.0.0.1
    peer = st.context.ip_address
    # None: this machine (Streamlit reports no loopback address); not a string: no client connection (AppTest)
    return peer if isinstance(peer, str) and peer else "local"


def browser_session() -> str:
    """A random id of this browser session (Streamlit's session), made on first use."""
    return st.session_state.setdefault(state.ADMIN_BROWSER, secrets.token_hex(8))


def signed_in(policy: SignInSettings) -> bool:
    """Whether this browser session is signed in: it signed in, and has not been idle for
    ``admin_idle_minutes`` since (each run of the admin page is an action and renews it)."""
    last = st.session_state.get(state.ADMIN_OK)
    if last is None:
        return False
    now = time.monotonic()
    if now - last > policy.admin_idle_minutes * 60:
        sign_out(f"idle for more than {policy.admin_idle_minutes:g} minutes")
        st.info(f"You were signed out after {policy.admin_idle_minutes:g} minutes without activity.")
        return False
    st.session_state[state.ADMIN_OK] = now
    return True


def sign_out(reason: str) -> None:
    st.session_state.pop(state.ADMIN_OK, None)
    log.info("admin signed out (%s): session=%s at=%s", reason, browser_session(), utcnow().isoformat())


def sign_in_form(
    make_session: sessionmaker[Session], policy: SignInSettings, behind_proxy: bool, check: Callable[[str], bool]
) -> None:
    """The password form. A submit is one limited attempt (``check(password)`` runs only when this
    session and address may try); a right password marks the session signed in and reruns the page."""
    with st.form("login"):
        given = st.text_input("Password", type="password")
        if not st.form_submit_button("Sign in"):
            return
    verdict = sign_ins.attempt(
        make_session,
        address=client_address(behind_proxy),
        browser_session=browser_session(),
        target="admin",
        check=lambda: check(given),
        policy=policy,
    )
    if verdict.outcome == "success":
        st.session_state[state.ADMIN_OK] = time.monotonic()
        st.rerun()
    if verdict.outcome == "failure":
        st.error("Wrong password." + (f" {_wait(verdict.retry_at, verdict.locked)}" if verdict.retry_at else ""))
    else:
        st.error(f"Too many wrong passwords: this attempt was not checked. {_wait(verdict.retry_at, verdict.locked)}")


def _wait(retry_at: datetime | None, locked: bool) -> str:
    assert retry_at is not None
    seconds = max(1, round((retry_at - utcnow()).total_seconds()))
    if locked:
        return f"Sign-in is locked for this browser and address until {retry_at:%H:%M:%S} UTC ({seconds} s)."
    return f"The next attempt is checked in {seconds} s."


def preview_allowed(
    make_session: sessionmaker[Session],
    policy: SignInSettings,
    behind_proxy: bool,
    *,
    study_name: str,
    key: str | None,
    password: str | None,
) -> bool:
    """Whether this browser session may preview ``study_name``: the admin page's link, checked once per
    browser session as a limited sign-in attempt (a wrong or expired key is a failure, logged), so
    that keys cannot be tried faster than passwords."""
    if st.session_state.get(state.PREVIEW_ALLOWED) == study_name:
        return True
    verdict = sign_ins.attempt(
        make_session,
        address=client_address(behind_proxy),
        browser_session=browser_session(),
        target="preview",
        check=lambda: preview.key_is_valid(key, password, study_name),
        policy=policy,
    )
    if verdict.outcome != "success":
        return False
    st.session_state[state.PREVIEW_ALLOWED] = study_name
    return True
