"""The participant page: consent -> instructions -> trials -> optional questions -> completion,
or an ending of another outcome (returned, timed out, screened out).

Thin: reads state from the service, renders it, and on each submit calls one service
function, in the submit button's callback (:mod:`survey.web.views.submits`): Streamlit runs it
before the script, so one run per answer stores it and draws the next screen. Where the
participant is lives in the database, so a reload continues. The browser only ever receives
images (served by content hash) and position labels. Every text comes from the study's catalog
(:mod:`survey.study.texts`); every screen after consent ends with "Stop and leave".
"""

from __future__ import annotations

import logging

import streamlit as st
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from survey.participants import sanitize, service
from survey.settings import Settings
from survey.study import texts
from survey.web import preview as preview_mod
from survey.web import sign_in, state
from survey.web.views import browser_signals, countdown, products, protocol_parts, submits

log = logging.getLogger("lookalike.survey")
# Images are shown at fixed widths that keep a trial on one laptop screen; survey/study/media.py renders
# them at exactly those widths at build time (media.WIDTHS), so Streamlit serves the bytes as they are.


def render(
    make_session: sessionmaker[Session],
    study_name: str | None,
    *,
    preview: bool = False,
    settings: Settings,
) -> None:
    """``preview``: every visitor previews (``lookalike serve --preview``); otherwise a visitor
    previews with the admin page's link (its key is checked against the admin password, as a
    limited sign-in attempt: survey/web/sign_in.py). ``settings.browser_test_mark``: the secret the
    project's browser tests carry (:mod:`survey.web.views.browser_signals`)."""
    failed = st.session_state.pop(state.SUBMIT_FAILED, False)
    try:
        if failed:  # a submit's callback found the database unreachable: its answer was not stored
            _db_unavailable()
        if preview or st.query_params.get(state.PREVIEW_PARAM):
            sandbox = _preview_sessions(make_session, study_name, preview, settings)
            if sandbox is None:
                return
            make_session = sandbox
        _render(make_session, study_name, browser_signals.is_browser_test(_user_agent(), settings.browser_test_mark))
    except OperationalError:
        # The database is unreachable (restarting, locked for too long): nothing was half-written,
        # since every answer is one transaction. Say so, keep the traceback in the server's log.
        # Which study (and language) is unknown without the database: every language is shown.
        log.exception("database unavailable while serving a participant")
        if not failed:
            _db_unavailable()


def _db_unavailable() -> None:
    st.error("\n\n".join(texts.Catalog(lang)["db_unavailable"] for lang in texts.LANGUAGES))


def configured_password(from_settings: str | None) -> str | None:
    """The admin password: the settings' (``LOOKALIKE_ADMIN_PASSWORD``), else Streamlit secrets'."""
    if from_settings:
        return from_settings
    try:
        return st.secrets.get("admin_password") or None
    except FileNotFoundError:  # no secrets.toml at all
        return None


def _preview_sessions(
    make_session: sessionmaker[Session], study_name: str | None, preview: bool, settings: Settings
) -> sessionmaker[Session] | None:
    """The preview's sandbox (made once per browser session), after the PREVIEW banner; ``None``
    for an invalid preview link (said so)."""
    study = service.current_study(make_session, study_name)
    t = service.study_config(make_session, study.id).texts_catalog()
    key = st.query_params.get(state.PREVIEW_PARAM)
    if not (
        preview
        or sign_in.preview_allowed(
            make_session,
            settings.sign_in,
            settings.behind_proxy,
            study_name=study.name,
            key=key,
            password=configured_password(settings.admin_password),
        )
    ):
        st.error(t["preview_invalid"])
        return None
    st.warning(t["preview_banner"])
    held = st.session_state.get(state.PREVIEW_SANDBOX)
    if held is None or held[0] != study.id:
        held = (study.id, preview_mod.sandbox(make_session, study.id))
        st.session_state[state.PREVIEW_SANDBOX] = held
    return held[1]


def _user_agent() -> str:
    return st.context.headers.get("User-Agent", "")


def _render(make_session: sessionmaker[Session], study_name: str | None, browser_test: bool) -> None:
    token = st.query_params.get(state.TOKEN_PARAM)
    if not token and st.session_state.get(state.TOKEN):
        # The back button (or an edited URL) dropped the token: this browser session already
        # has a participant, so put the token back instead of consenting a second time.
        st.query_params[state.TOKEN_PARAM] = st.session_state[state.TOKEN]
        st.rerun()
    if not token:
        _consent(make_session, study_name, browser_test)
        return
    st.session_state[state.TOKEN] = token
    current = service.participant_state(make_session, token)
    if current is None:
        st.error("\n\n".join(texts.Catalog(lang)["invalid_link"] for lang in texts.LANGUAGES))
        return
    config = service.participant_config(make_session, token)
    t = config.texts_catalog()
    browser_signals.mount(make_session, token, t, report=not browser_test, screen=_screen_key(current))
    ongoing = current.stage in ("instructions", "comprehension", "trial", "questions")
    if ongoing and not config.allow_mobile and is_mobile(_user_agent()):
        st.markdown(t["use_a_computer"])  # started on a computer, continued on a phone: same page
        return
    if ongoing and st.session_state.get(state.LEAVING):
        _confirm_leave(make_session, token, t)
        return
    if current.stage == "instructions":
        _instructions(make_session, token, current, config, t)
    elif current.stage == "comprehension":
        _comprehension(make_session, token, current, t)
    elif current.stage == "trial":
        _trial(make_session, token, current, t)
    elif current.stage == "questions":
        _questions(make_session, token, config, t)
    elif current.stage in ("returned", "timed_out"):
        st.markdown(t[current.stage])
        return
    else:  # done or screened_out: the code of the outcome, after the last answer was stored
        st.markdown(t["done" if current.stage == "done" else "screened_out"])
        _completion(current, config.redirect_seconds, t)
        return
    if st.button(t["leave"], key="leave"):
        st.session_state[state.LEAVING] = True
        st.rerun()


def _screen_key(current: service.ParticipantState) -> str:
    """Changes with every screen (a trial, a swipe, a practice attempt): the browser script reports then."""
    trial = current.trial
    swipe = trial.swipe.swipe_id if trial is not None and trial.swipe is not None else None
    return f"{current.stage}:{current.answered}:{current.attempt}:{trial.trial_id if trial else None}:{swipe}"


def _confirm_leave(make_session: sessionmaker[Session], token: str, t: texts.Catalog) -> None:
    st.warning(t["leave_confirm"])
    yes, no = st.columns(2)
    if yes.button(t["leave_yes"], type="primary", width="stretch"):
        service.return_participant(make_session, token)
        st.session_state[state.LEAVING] = False
        st.rerun()
    if no.button(t["leave_no"], width="stretch"):
        st.session_state[state.LEAVING] = False
        st.rerun()


def _completion(current: service.ParticipantState, seconds: int, t: texts.Catalog) -> None:
    """The outcome's code, then a redirect after a visible countdown that the participant can stop
    (WCAG 2.2.1: a time limit the user can turn off), with a link to go at once."""
    if current.completion_code:
        st.success(t.fmt("completion_code", code=current.completion_code))
    if not current.redirect_url:
        return
    countdown.countdown(current.redirect_url, seconds, t)
    st.link_button(t["redirect_now"], current.redirect_url, type="primary")


#: User-Agent fragments of phones and tablets (iPadOS reports itself as a Mac: not caught, and
#: its screen holds the desktop layout).
MOBILE_AGENTS = ("Mobi", "Android", "iPhone", "iPad", "iPod", "Windows Phone")


def is_mobile(user_agent: str) -> bool:
    return any(part in user_agent for part in MOBILE_AGENTS)


def _consent(make_session: sessionmaker[Session], study_name: str | None, browser_test: bool) -> None:
    try:
        study = service.current_study(make_session, study_name)
    except service.StudyUnavailable:
        st.warning("\n\n".join(texts.Catalog(lang)["unavailable"] for lang in texts.LANGUAGES))
        return
    config = service.study_config(make_session, study.id)
    t = config.texts_catalog()
    browser_signals.mount(make_session, None, t, report=False)  # the page's language; reports wait for consent
    if not config.allow_mobile and is_mobile(_user_agent()):
        st.markdown(t["use_a_computer"])  # before consent: nothing is stored
        return
    if st.session_state.get(state.DECLINED):
        st.markdown(t["declined"])
        return
    st.markdown(t["consent"])
    agree, decline = st.columns(2)
    if agree.button(t["agree"], type="primary", width="stretch"):
        try:
            token = service.start_participant(
                make_session, study.id, st.query_params.to_dict(), browser_test=browser_test
            )
        except service.StudyUnavailable:
            st.warning(t["unavailable"])
            return
        st.query_params[state.TOKEN_PARAM] = token
        st.session_state[state.TOKEN] = token
        st.rerun()
    if decline.button(t["decline"], width="stretch"):
        st.session_state[state.DECLINED] = True
        st.rerun()


def _instructions(make_session, token, current, config, t: texts.Catalog) -> None:
    if config.texts.instructions:
        st.markdown(config.texts.instructions)
    else:
        st.markdown(t["instructions_intro"])
        for protocol in current.protocols:
            for paragraph in protocol_parts.instructions(protocol, config, t):
                st.markdown(paragraph)
    st.markdown(t.fmt("instructions_time_limit", minutes=config.time_limit_minutes))
    st.button(
        t["start"],
        type="primary",
        on_click=submits.store_once,
        args=(token, "instructions", lambda: service.finish_instructions(make_session, token)),
    )


#: On a phone (narrow screen) Streamlit stacks columns, so a set's five products would come one
#: under the other and never be seen together. A set's row (containers keyed ``set-...``) stays a
#: row, its images shrink to fit, and the product shrinks so that it stays in view above its sets.
def _comprehension(make_session, token: str, current: service.ParticipantState, t: texts.Catalog) -> None:
    """The practice screens of one attempt on one form; feedback after a wrong attempt."""
    st.markdown(t.fmt("comprehension_intro", attempt=current.attempt))
    products.phone_layout()
    if st.session_state.get(state.PRACTICE_FEEDBACK):
        st.error(st.session_state[state.PRACTICE_FEEDBACK])
    form = f"practice-{current.attempt}"
    with st.form(key=form):
        for i, screen in enumerate(current.practice):
            with st.container(border=True):
                products.reference(screen.reference_path, 100, t, key=f"reference-{i}")
                for label, col, paths in zip("AB", st.columns(2, gap="large"), screen.grids, strict=True):
                    with col:
                        st.markdown(f"**{t.fmt('set', label=label)}**")
                        products.grid_row(paths, 72, t, key=f"set-{i}-{label}", set_label=t.fmt("set", label=label))
                labels = {k: t.fmt("set", label=label) for k, label in enumerate("AB")}
                submits.choose_one(t.fmt("comprehension_question", number=i + 1), labels, f"{form}-{i}")
        submits.form_error(form)
        st.form_submit_button(
            t["submit"],
            type="primary",
            on_click=submits.practice,
            args=(make_session, token, form, len(current.practice), t),
        )


def _trial(make_session, token: str, current: service.ParticipantState, t: texts.Catalog) -> None:
    trial = current.trial
    assert trial is not None
    if st.session_state.pop(state.PRACTICE_PASSED, False):
        st.success(t["comprehension_passed"])
    service.mark_shown(make_session, token, trial.trial_id)
    products.phone_layout()
    st.progress(current.answered / current.total, text=t.fmt("progress", number=trial.number, total=current.total))
    protocol_parts.render_trial(make_session, token, trial, t)


def _questions(make_session, token: str, config, t: texts.Catalog) -> None:
    st.markdown(t["questions"])
    with st.form(key="questions"):
        for q in config.demographics:
            st.selectbox(
                q.label,
                options=list(q.options),
                index=None,
                placeholder=t["question_placeholder"],
                key=f"question-{q.key}",
            )
        if config.ask_comment:
            st.text_area(t["comment"], max_chars=sanitize.MAX_COMMENT_LEN, key="question-comment")
        keys = [q.key for q in config.demographics]
        st.form_submit_button(
            t["finish"],
            type="primary",
            on_click=submits.questions,
            args=(make_session, token, keys, config.ask_comment),
        )
