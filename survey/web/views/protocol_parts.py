"""The trial pages, one per protocol: the web layer's part of :mod:`survey.protocols`.

Each protocol registers in :data:`VIEWS` the function that draws its trial (reference, grids and
the form) and, beside it, the submit callback that reads the form and stores the answer through
the service (once per session: :func:`survey.web.views.submits.store_once`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from survey.participants import service
from survey.protocols import Parts
from survey.study import texts
from survey.study.config import StudyConfig
from survey.web.views import products, swipe
from survey.web.views.submits import choose_one, form_error, refuse, store_once

Sessions = sessionmaker[Session]
TrialPage = Callable[[Sessions, str, service.TrialView, texts.Catalog], None]
#: The instructions of a protocol (Markdown, in order) for a study's config, from its catalog.
Instructions = Callable[[StudyConfig, texts.Catalog], list[str]]


@dataclass(frozen=True)
class WebParts:
    """What a protocol shows: its instructions before the first trial, and its trial page."""

    instructions: Instructions
    page: TrialPage


#: Protocol -> what it shows.
VIEWS: Parts[WebParts] = Parts("web", "trial page")


def render_trial(make_session: Sessions, token: str, trial: service.TrialView, t: texts.Catalog) -> None:
    """Draw ``trial`` with its protocol's page."""
    VIEWS[trial.protocol].page(make_session, token, trial, t)


def instructions(protocol: str, config: StudyConfig, t: texts.Catalog) -> list[str]:
    """The instructions of ``protocol`` in ``config``'s study (Markdown paragraphs)."""
    return VIEWS[protocol].instructions(config, t)


def _named_instructions(config: StudyConfig, t: texts.Catalog, protocol: str) -> list[str]:
    return [t[f"instructions_{protocol}"]]


def _register(protocol: str, instructions: Instructions | None = None) -> Callable[[TrialPage], TrialPage]:
    """Register the decorated page as ``protocol``'s, with its instructions (default: the
    catalog's ``instructions_<protocol>``)."""

    def register(page: TrialPage) -> TrialPage:
        told = instructions or (lambda config, t: _named_instructions(config, t, protocol))
        VIEWS.register(protocol, WebParts(told, page))
        return page

    return register


def _rating_instructions(config: StudyConfig, t: texts.Catalog) -> list[str]:
    """The rating instructions, and the ticks' when the study asks for them."""
    return [t["instructions_rating"], *([t["instructions_rating_ticks"]] if config.rating_item_ticks else [])]


@_register("rating", _rating_instructions)
def _rating(make_session, token: str, trial: service.TrialView, t: texts.Catalog) -> None:
    left, right = st.columns([1, 3], gap="large")
    with left:
        products.reference(trial.reference_path, 240, t)
    with right:
        st.markdown(f"**{t['recommended']}**")
        products.grid_row(trial.grids[0], 150, t, numbered=trial.ticks)
    form = f"trial-{trial.trial_id}"
    with st.form(key=form):
        if trial.ticks:
            st.markdown(t["tick_prompt"])
            with st.container(key="set-ticks"):  # one row on a phone too, under the products
                for i, col in enumerate(st.columns(len(trial.grids[0]))):
                    col.checkbox(f"{i + 1}", key=f"{form}-tick-{i}")
        choose_one(t["rating_question"], t.scale(), f"{form}-rating")
        form_error(form)
        ticks = len(trial.grids[0]) if trial.ticks else 0
        st.form_submit_button(
            t["submit"], type="primary", on_click=_submit_rating, args=(make_session, token, trial.trial_id, ticks, t)
        )


@_register("pairwise")
def _pairwise(make_session, token: str, trial: service.TrialView, t: texts.Catalog) -> None:
    products.reference(trial.reference_path, 170, t)
    for label, col, paths in zip("AB", st.columns(2, gap="large"), trial.grids, strict=True):
        with col, st.container(border=True):
            st.markdown(f"**{t.fmt('set', label=label)}**")
            products.grid_row(paths, 100, t, key=f"set-{label}", set_label=t.fmt("set", label=label))
    form = f"trial-{trial.trial_id}"
    with st.form(key=form):
        choose_one(t["pairwise_question"], t.pairwise_options(), f"{form}-choice")
        form_error(form)
        st.form_submit_button(
            t["submit"], type="primary", on_click=_submit_pairwise, args=(make_session, token, trial.trial_id, t)
        )


@_register("ranking")
def _ranking(make_session, token: str, trial: service.TrialView, t: texts.Catalog) -> None:
    left, right = st.columns([1, 5], gap="medium")
    with left:
        products.reference(trial.reference_path, 170, t)
    with right:  # sets two per row, so up to six fit one laptop screen
        for row in range(0, len(trial.grids), 2):
            for col, i in zip(st.columns(2, gap="small"), range(row, min(row + 2, len(trial.grids))), strict=False):
                with col, st.container(border=True):
                    st.markdown(f"**{t.fmt('set', label=i + 1)}**")  # not a caption: its grey fails AA contrast
                    products.grid_row(trial.grids[i], 72, t, key=f"set-{i + 1}", set_label=t.fmt("set", label=i + 1))
    labels = [t.fmt("set", label=i + 1) for i in range(len(trial.grids))]
    form = f"trial-{trial.trial_id}"
    with st.form(key=form):
        for which in ("best", "worst"):
            choose_one(t[f"ranking_{which}"], dict(enumerate(labels)), f"{form}-{which}")
        form_error(form)
        st.form_submit_button(
            t["submit"], type="primary", on_click=_submit_ranking, args=(make_session, token, trial.trial_id, t)
        )


def _submit_rating(make_session: Sessions, token: str, trial_id: int, n_ticks: int, t: texts.Catalog) -> None:
    form = f"trial-{trial_id}"
    value = st.session_state.get(f"{form}-rating")
    if value is None:
        return refuse(form, t["rating_missing"])
    ticks = [bool(st.session_state.get(f"{form}-tick-{i}")) for i in range(n_ticks)] if n_ticks else None
    store_once(token, form, lambda: service.submit_rating(make_session, token, trial_id, int(value), ticks))


def _submit_pairwise(make_session: Sessions, token: str, trial_id: int, t: texts.Catalog) -> None:
    form = f"trial-{trial_id}"
    choice = st.session_state.get(f"{form}-choice")
    if choice is None:
        return refuse(form, t["pairwise_missing"])
    store_once(token, form, lambda: service.submit_pairwise(make_session, token, trial_id, choice))


def _submit_ranking(make_session: Sessions, token: str, trial_id: int, t: texts.Catalog) -> None:
    form = f"trial-{trial_id}"
    best, worst = st.session_state.get(f"{form}-best"), st.session_state.get(f"{form}-worst")
    if best is None or worst is None:
        return refuse(form, t["ranking_missing"])
    if best == worst:
        return refuse(form, t["ranking_same"])
    store_once(token, form, lambda: service.submit_ranking(make_session, token, trial_id, int(best), int(worst)))


# the swipe round's screens are in their own module (four screens, the arrow keys, the phone layout)
_register("swipe", swipe.instructions)(swipe.page)
