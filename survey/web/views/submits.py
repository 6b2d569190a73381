"""The participant page's submit callbacks and what they share: storing once per session
(:func:`store_once`), refusing an incomplete form (:func:`refuse`, :func:`form_error`), a question's
answer options with none chosen (:func:`choose_one`). The practice and question forms' callbacks are
here; each protocol's trial callback sits beside its page in :mod:`survey.web.views.protocol_parts`.

Streamlit runs a submit button's callback before the script run that its click starts, so the
answer is stored and that one run draws the next screen. Each callback reads the form's widgets
from ``st.session_state`` by key (``{form}-...``), refuses an incomplete form (the message is shown
in the form by :func:`form_error`) and stores through one service call, once per session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from survey.participants import comprehension, service
from survey.study import texts
from survey.web import state

log = logging.getLogger("lookalike.survey")
Sessions = sessionmaker[Session]


def store_once(token: str, form: str, store: Callable[[], object]) -> None:
    """In a submit callback: run ``store`` (one service call, one transaction) unless this
    session stored this form already (a double click queues a second submit). An unreachable
    database stores nothing; the next run says so and the form keeps its values for a retry."""
    done: set[tuple[str, str]] = st.session_state.setdefault(state.SUBMITTED, set())
    if (token, form) in done:
        return
    try:
        store()
    except OperationalError:
        log.exception("database unavailable while storing a participant's submit")
        st.session_state[state.SUBMIT_FAILED] = True
        return
    done.add((token, form))


def refuse(form: str, message: str) -> None:
    """In a submit callback: the form lacks an answer; :func:`form_error` shows why."""
    st.session_state[state.FORM_ERROR] = (form, message)


def form_error(form: str) -> None:
    """Inside ``form``: the message of its last refused submit, once."""
    held = st.session_state.get(state.FORM_ERROR)
    if held is not None and held[0] == form:
        del st.session_state[state.FORM_ERROR]
        st.error(held[1])


def choose_one(question: str, labels: Mapping[Any, str], key: str) -> None:
    """Inside a form: ``question`` with the answers ``labels`` (value -> shown text) side by side and
    none chosen, so that nothing suggests an answer and an unanswered form is refused."""
    st.radio(question, options=list(labels), format_func=labels.__getitem__, index=None, horizontal=True, key=key)


def practice(make_session: Sessions, token: str, form: str, screens: int, t: texts.Catalog) -> None:
    given = [int(c) for i in range(screens) if (c := st.session_state.get(f"{form}-{i}")) is not None]
    if len(given) < screens:
        return refuse(form, t["comprehension_missing"])

    def store() -> None:
        outcome = comprehension.submit(make_session, token, given)
        retry = t.fmt("comprehension_retry", screens=", ".join(map(str, outcome.wrong)))
        st.session_state[state.PRACTICE_FEEDBACK] = retry if outcome.result == "retry" else None
        st.session_state[state.PRACTICE_PASSED] = outcome.result == "passed"

    store_once(token, form, store)


def questions(make_session: Sessions, token: str, keys: list[str], ask_comment: bool) -> None:
    answers = {k: st.session_state.get(f"question-{k}") for k in keys}
    comment = st.session_state.get("question-comment") if ask_comment else None
    store_once(token, "questions", lambda: service.submit_questions(make_session, token, answers, comment))
