"""The participant page: consent -> instructions -> rating trials -> completion code.

Thin: reads state from the service, renders it, and on each submit calls one service
function. Where the participant is lives in the database, so a reload continues.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from similarity.images import load_rgb

from .. import service, state, texts


@st.cache_data(max_entries=2000, show_spinner=False)
def _thumb(path: str, size: int) -> np.ndarray:
    img = load_rgb(path)
    img.thumbnail((size, size))
    return np.asarray(img)


def render(make_session: sessionmaker[Session], study_name: str | None) -> None:
    token = st.query_params.get(state.TOKEN_PARAM)
    if not token:
        _consent(make_session, study_name)
        return
    current = service.participant_state(make_session, token)
    if current is None:
        st.error(texts.INVALID_LINK)
        return
    if current.stage == "instructions":
        st.markdown(texts.INSTRUCTIONS)
        if st.button("Start", type="primary"):
            service.finish_instructions(make_session, token)
            st.rerun()
    elif current.stage == "trial":
        _trial(make_session, token, current)
    else:
        st.markdown(texts.DONE)
        st.success(f"Your completion code: **{current.completion_code}**")


def _consent(make_session: sessionmaker[Session], study_name: str | None) -> None:
    if st.session_state.get(state.DECLINED):
        st.markdown(texts.DECLINED)
        return
    try:
        study = service.current_study(make_session, study_name)
    except service.StudyUnavailable:
        st.warning("This study is not available at the moment.")
        return
    st.markdown(texts.CONSENT)
    agree, decline = st.columns(2)
    if agree.button("I agree, start", type="primary", width="stretch"):
        try:
            token = service.start_participant(make_session, study.id, st.query_params.to_dict())
        except service.StudyUnavailable:
            st.warning("This study is not accepting new participants. Thank you for your interest.")
            return
        st.query_params[state.TOKEN_PARAM] = token
        st.rerun()
    if decline.button("I do not agree", width="stretch"):
        st.session_state[state.DECLINED] = True
        st.rerun()


def _trial(make_session: sessionmaker[Session], token: str, current: service.ParticipantState) -> None:
    trial = current.trial
    assert trial is not None
    service.mark_shown(make_session, token, trial.trial_id)
    st.progress(current.answered / current.total, text=f"Screen {trial.number} of {current.total}")
    left, right = st.columns([1, 3], gap="large")
    with left:
        st.markdown("**Product**")
        st.image(_thumb(trial.reference_path, 360), width="stretch")
    with right:
        st.markdown("**Recommended as similar**")
        for col, path in zip(st.columns(len(trial.item_paths)), trial.item_paths):
            col.image(_thumb(path, 240), width="stretch")
    with st.form(key=f"trial-{trial.trial_id}", border=True):
        rating = st.radio("How similar are the five recommendations to the product?",
                          options=list(texts.SCALE), format_func=texts.SCALE.get, index=None,
                          horizontal=True)
        if st.form_submit_button("Submit", type="primary"):
            if rating is None:
                st.error("Please choose a rating from 1 to 7 before submitting.")
                return
            service.submit_rating(make_session, token, trial.trial_id, int(rating))
            st.rerun()
