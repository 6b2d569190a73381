"""The participant page: consent -> instructions -> trials -> optional questions -> completion.

Thin: reads state from the service, renders it, and on each submit calls one service
function. Where the participant is lives in the database, so a reload continues. The
browser only ever receives images (served by content hash) and position labels.
"""

from __future__ import annotations

import logging

import numpy as np
import streamlit as st
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from similarity.images import load_rgb

from .. import sanitize, service, state, texts

log = logging.getLogger("lookalike.survey")
REFERENCE_PX = 300  # thumbnail resolution; display widths below keep a trial on one laptop screen
ITEM_PX = 200


@st.cache_data(max_entries=4000, show_spinner=False)
def _thumb(path: str, size: int) -> np.ndarray:
    img = load_rgb(path)
    img.thumbnail((size, size))
    return np.asarray(img)


def render(make_session: sessionmaker[Session], study_name: str | None) -> None:
    try:
        _render(make_session, study_name)
    except OperationalError:
        # The database is unreachable (restarting, locked for too long): nothing was half-written,
        # since every answer is one transaction. Say so, keep the traceback in the server's log.
        log.exception("database unavailable while serving a participant")
        st.error(texts.DB_UNAVAILABLE)


def _render(make_session: sessionmaker[Session], study_name: str | None) -> None:
    token = st.query_params.get(state.TOKEN_PARAM)
    if not token and st.session_state.get(state.TOKEN):
        # The back button (or an edited URL) dropped the token: this browser session already
        # has a participant, so put the token back instead of consenting a second time.
        st.query_params[state.TOKEN_PARAM] = st.session_state[state.TOKEN]
        st.rerun()
    if not token:
        _consent(make_session, study_name)
        return
    st.session_state[state.TOKEN] = token
    current = service.participant_state(make_session, token)
    if current is None:
        st.error(texts.INVALID_LINK)
        return
    config = service.participant_config(make_session, token) if current.stage in ("instructions", "questions") else None
    if current.stage == "instructions":
        _instructions(make_session, token, current, config)
    elif current.stage == "trial":
        _trial(make_session, token, current)
    elif current.stage == "questions":
        _questions(make_session, token, config)
    else:
        st.markdown(texts.DONE)
        st.success(f"Your completion code: **{current.completion_code}**")
        if current.redirect_url:
            st.link_button("Return to the recruitment site", current.redirect_url, type="primary")


def _consent(make_session: sessionmaker[Session], study_name: str | None) -> None:
    if st.session_state.get(state.DECLINED):
        st.markdown(texts.DECLINED)
        return
    try:
        study = service.current_study(make_session, study_name)
    except service.StudyUnavailable:
        st.warning(texts.UNAVAILABLE)
        return
    custom = service.study_config(make_session, study.id).texts.consent
    st.markdown(custom or texts.CONSENT)
    agree, decline = st.columns(2)
    if agree.button("I agree, start", type="primary", width="stretch"):
        try:
            token = service.start_participant(make_session, study.id, st.query_params.to_dict())
        except service.StudyUnavailable:
            st.warning(texts.UNAVAILABLE)
            return
        st.query_params[state.TOKEN_PARAM] = token
        st.session_state[state.TOKEN] = token
        st.rerun()
    if decline.button("I do not agree", width="stretch"):
        st.session_state[state.DECLINED] = True
        st.rerun()


def _instructions(make_session, token, current, config) -> None:
    if config.texts.instructions:
        st.markdown(config.texts.instructions)
    else:
        st.markdown(texts.INSTRUCTIONS_INTRO)
        for protocol in current.protocols:
            st.markdown(texts.INSTRUCTIONS[protocol])
            if protocol == "rating" and config.rating_item_ticks:
                st.markdown(texts.INSTRUCTIONS["rating_ticks"])
    if st.button("Start", type="primary"):
        service.finish_instructions(make_session, token)
        st.rerun()


def _grid_row(paths: tuple[str, ...], px: int, *, numbered: bool = False) -> None:
    """One grid's products in a row, each shown ``px`` wide (stacked on a phone)."""
    for i, (col, path) in enumerate(zip(st.columns(len(paths), gap="small"), paths, strict=True)):
        col.image(_thumb(path, ITEM_PX), width=px, caption=str(i + 1) if numbered else None)


def _trial(make_session, token: str, current: service.ParticipantState) -> None:
    trial = current.trial
    assert trial is not None
    service.mark_shown(make_session, token, trial.trial_id)
    st.progress(current.answered / current.total, text=f"Screen {trial.number} of {current.total}")
    if trial.protocol == "rating":
        _rating(make_session, token, trial)
    elif trial.protocol == "pairwise":
        _pairwise(make_session, token, trial)
    else:
        _ranking(make_session, token, trial)


def _reference(trial: service.TrialView, px: int) -> None:
    st.markdown("**Product**")
    st.image(_thumb(trial.reference_path, REFERENCE_PX), width=px)


def _rating(make_session, token: str, trial: service.TrialView) -> None:
    left, right = st.columns([1, 3], gap="large")
    with left:
        _reference(trial, 240)
    with right:
        st.markdown("**Recommended as similar**")
        _grid_row(trial.grids[0], 150, numbered=trial.ticks)
    with st.form(key=f"trial-{trial.trial_id}"):
        ticks = None
        if trial.ticks:
            st.markdown("Tick each recommendation you find similar to the product:")
            ticks = [
                col.checkbox(f"{i + 1}", key=f"tick-{trial.trial_id}-{i}")
                for i, col in enumerate(st.columns(len(trial.grids[0])))
            ]
        rating = st.radio(
            "How similar are the five recommendations to the product?",
            options=list(texts.SCALE),
            format_func=texts.SCALE.get,
            index=None,
            horizontal=True,
        )
        if st.form_submit_button("Submit", type="primary"):
            if rating is None:
                st.error("Please choose a rating from 1 to 7 before submitting.")
                return
            service.submit_rating(make_session, token, trial.trial_id, int(rating), ticks)
            st.rerun()


def _pairwise(make_session, token: str, trial: service.TrialView) -> None:
    _reference(trial, 170)
    for label, col, paths in zip("AB", st.columns(2, gap="large"), trial.grids, strict=True):
        with col, st.container(border=True):
            st.markdown(f"**Set {label}**")
            _grid_row(paths, 100)
    with st.form(key=f"trial-{trial.trial_id}"):
        choice = st.radio(
            "Which set is more similar to the product?",
            options=list(texts.PAIRWISE_OPTIONS),
            format_func=texts.PAIRWISE_OPTIONS.get,
            index=None,
            horizontal=True,
        )
        if st.form_submit_button("Submit", type="primary"):
            if choice is None:
                st.error("Please choose A, B or equally similar before submitting.")
                return
            service.submit_pairwise(make_session, token, trial.trial_id, choice)
            st.rerun()


def _ranking(make_session, token: str, trial: service.TrialView) -> None:
    left, right = st.columns([1, 5], gap="medium")
    with left:
        _reference(trial, 170)
    with right:  # sets two per row, so up to six fit one laptop screen
        for row in range(0, len(trial.grids), 2):
            for col, i in zip(st.columns(2, gap="small"), range(row, min(row + 2, len(trial.grids))), strict=False):
                with col, st.container(border=True):
                    st.caption(f"**Set {i + 1}**")
                    _grid_row(trial.grids[i], 72)
    labels = [f"Set {i + 1}" for i in range(len(trial.grids))]
    with st.form(key=f"trial-{trial.trial_id}"):
        best = st.radio(
            "Most similar set", options=range(len(labels)), format_func=labels.__getitem__, index=None, horizontal=True
        )
        worst = st.radio(
            "Least similar set", options=range(len(labels)), format_func=labels.__getitem__, index=None, horizontal=True
        )
        if st.form_submit_button("Submit", type="primary"):
            if best is None or worst is None:
                st.error("Please choose both the most and the least similar set.")
                return
            if best == worst:
                st.error("The most and the least similar set must be different.")
                return
            service.submit_ranking(make_session, token, trial.trial_id, int(best), int(worst))
            st.rerun()


def _questions(make_session, token: str, config) -> None:
    st.markdown(texts.QUESTIONS)
    with st.form(key="questions"):
        answers = {
            q.key: st.selectbox(q.label, options=list(q.options), index=None, placeholder="Prefer not to say")
            for q in config.demographics
        }
        comment = (
            st.text_area("Any comments on the study? (optional)", max_chars=sanitize.MAX_COMMENT_LEN)
            if config.ask_comment
            else None
        )
        if st.form_submit_button("Finish", type="primary"):
            service.submit_questions(make_session, token, answers, comment)
            st.rerun()
