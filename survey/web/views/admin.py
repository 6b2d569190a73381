"""The researcher's page (/admin): progress, participants, timing, report and export.

Needs the password from the settings (``LOOKALIKE_ADMIN_PASSWORD``) or Streamlit secrets
(``admin_password``); without one configured the page refuses. Sign-in attempts are limited and
logged, a sign-in expires when idle, and "Sign out" ends it (survey/web/sign_in.py). Results by
condition stay hidden until the researcher ticks "Unblind".
"""

from __future__ import annotations

import hmac
import time

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from survey.analysis.formatting import CI_NEEDS_TWO_PARTICIPANTS, format_ci
from survey.analysis.report import render_html
from survey.analysis.report_sequential import look_rows
from survey.analysis.results import compute_results
from survey.analysis.sequential_data import study_sequential
from survey.analysis.swipe_results import SwipeResults
from survey.participants import service
from survey.participants.status import StudyStatus, refresh_status
from survey.prolific import records as prolific_records
from survey.settings import Settings
from survey.study import monitor
from survey.study.errors import StudyUnavailable
from survey.study.export import tables
from survey.web import sign_in, state
from survey.web.preview import preview_key
from survey.web.views.participant import configured_password


def render(make_session: sessionmaker[Session], settings: Settings) -> None:
    """The admin page: sign-in, then the study's controls, progress, participants, status, comments and
    (unblinded on request) results. The password: :attr:`survey.settings.Settings.admin_password`
    (else Streamlit secrets)."""
    st.title("Study administration")
    expected = configured_password(settings.admin_password)
    if not expected:
        st.error(
            "The admin page is disabled: set LOOKALIKE_ADMIN_PASSWORD (or admin_password in "
            ".streamlit/secrets.toml) and restart the app."
        )
        return
    if not sign_in.signed_in(settings.sign_in):
        sign_in.sign_in_form(
            make_session, settings.sign_in, settings.behind_proxy, lambda given: _matches(given, expected)
        )
        return
    if st.button("Sign out"):
        sign_in.sign_out("the Sign out button")
        st.rerun()
    try:
        study = service.current_study(make_session, settings.study)
    except StudyUnavailable as exc:
        st.warning(str(exc))
        return
    expires = int(time.time() + settings.sign_in.admin_idle_minutes * 60)
    _study_controls(make_session, study, preview_key(expected, study.name, expires))
    status_after_timeouts = refresh_status(make_session, study.id)  # times idle participants out first
    _overview(make_session, study.id)
    _progress(make_session, study.id)
    st.subheader("Participants")
    st.dataframe(monitor.participants_table(make_session, study.id), width="stretch", hide_index=True)
    _status_section(status_after_timeouts)
    _stopping(make_session, study.id)
    _prolific(make_session, study.id)
    _comments(make_session, study.id)
    _results(make_session, study)


def _matches(given: str, expected: str) -> bool:
    """The password check, in constant time (runs only when the sign-in limiter lets an attempt through)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _study_controls(make_session: sessionmaker[Session], study: service.StudyInfo, preview: str) -> None:
    """The study's name and status, the button that closes or reopens it, the participant-flow preview
    (``preview``: its link's key) and its configuration."""
    st.caption(f"Study: {study.name} ({study.status})")
    if study.status == "open":
        if st.button("Close the study to new participants"):
            service.set_study_status(make_session, study.id, "closed")
            st.rerun()
    elif st.button("Reopen the study"):
        service.set_study_status(make_session, study.id, "open")
        st.rerun()
    st.link_button(  # the whole participant flow on a private copy: nothing is written (survey/web/preview.py)
        "Preview the participant flow",
        f"./?{state.PREVIEW_PARAM}={preview}",
    )
    with st.expander("Study configuration"):
        st.json(service.study_config(make_session, study.id).to_dict())


def _overview(make_session: sessionmaker[Session], study_id: int) -> None:
    """Five numbers: participants, in progress, completed, flagged, median seconds per trial."""
    ov = monitor.overview(make_session, study_id)
    cols = st.columns(5)
    cols[0].metric("Participants", ov.participants)
    cols[1].metric("In progress", ov.in_progress)
    cols[2].metric("Completed", ov.completed)
    cols[3].metric("Flagged", ov.flagged)
    cols[4].metric("Median s / trial", "-" if ov.median_trial_seconds is None else f"{ov.median_trial_seconds:.1f}")


def _progress(make_session: sessionmaker[Session], study_id: int) -> None:
    """Judgements per reference and condition, one table row per protocol and reference."""
    st.subheader("Progress: judgements per reference and condition")
    table = monitor.progress(make_session, study_id)
    if table.empty:
        st.info("No answers yet.")
    else:
        st.dataframe(
            table.pivot_table(index=["protocol", "reference"], columns="condition", values="judgements", fill_value=0),
            width="stretch",
        )


def _prolific(make_session: sessionmaker[Session], study_id: int) -> None:
    """The last sync with Prolific (`lookalike prolific sync` or `serve --prolific-sync-minutes`), its
    mismatches, and the approvals and rejections sent; nothing when the study was never synced."""
    last = prolific_records.last_sync(make_session, study_id)
    if last is None:
        return
    st.subheader("Prolific")
    when = f"{last.finished_at:%Y-%m-%d %H:%M:%S} UTC by {last.by}"
    if not last.ok:
        st.error(f"Last sync ({when}) failed; the study was not changed: {last.error}")
        return
    counts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(last.counts.items())) or "none"
    st.caption(
        f"Last sync {when}: Prolific study {last.prolific_study_id}, {last.submissions} submissions ({counts}); "
        f"{len(last.released)} participant(s) released, {len(last.mismatches)} mismatch(es)."
    )
    if last.mismatches:
        st.dataframe([vars(m) for m in last.mismatches], hide_index=True)
    sent = prolific_records.actions(make_session, study_id)
    if sent:
        st.dataframe(sent, hide_index=True)


def _comments(make_session: sessionmaker[Session], study_id: int) -> None:
    """The participants' free-text comments, if any, as data (never rendered as markup)."""
    notes = monitor.comments(make_session, study_id)
    if not notes.empty:
        st.subheader("Comments")
        st.dataframe(notes, width="stretch", hide_index=True)  # a data grid: text, never markup


def _results(make_session: sessionmaker[Session], study: service.StudyInfo) -> None:
    """Results by condition and the report and judgements downloads, only once the researcher unblinds."""
    st.subheader("Results")
    if not st.checkbox("Unblind: show results by condition", key=state.ADMIN_UNBLIND):
        st.caption("Results are hidden while the study runs, so that watching them cannot steer it.")
        return
    results = compute_results(make_session, study.id, n_boot=1000)
    st.dataframe(
        [
            {
                "condition": r.condition,
                "ratings": r.n_ratings,
                "participants": r.n_participants,
                "mean": round(r.mean, 2),
                "95% CI": format_ci(r, missing=CI_NEEDS_TWO_PARTICIPANTS),
            }
            for r in results.conditions
        ],
        hide_index=True,
    )
    if results.swipe is not None and results.swipe.like_rates is not None:
        _swipe_results(results.swipe)
    st.download_button(
        "Download report (HTML)", render_html(results), file_name=f"{study.name}-report.html", mime="text/html"
    )
    st.download_button(
        "Download judgements (CSV)",
        tables(make_session, study.id)["judgements"].to_csv(index=False),
        file_name=f"{study.name}-judgements.csv",
        mime="text/csv",
    )


def _swipe_results(sw: SwipeResults) -> None:
    """The swipe rounds' like rate and lift per condition, beside the base rate of random products."""
    assert sw.like_rates is not None
    base = f"{sw.base_rate.rate:.3f} {format_ci(sw.base_rate)}" if sw.base_rate is not None else "n/a"
    st.caption(
        f"Swipe rounds: like rate of the recommended products per condition; base rate of random products {base}."
    )
    lift = {x.condition: x for x in sw.lifts.lifts} if sw.lifts is not None else {}
    st.dataframe(
        [
            {
                "condition": r.condition,
                "products judged": r.n_products,
                "participants": r.n_participants,
                "like rate": round(r.rate, 3),
                "95% CI": format_ci(r),
                "lift": round(lift[r.condition].ratio, 2) if r.condition in lift else None,
            }
            for r in sw.like_rates.rates
        ],
        hide_index=True,
    )


def _stopping(make_session: sessionmaker[Session], study_id: int) -> None:
    """The stopping rule's looks: |z| against each boundary and the decision; the difference and its adjusted
    interval only once the researcher unblinds (they name the better condition)."""
    res = study_sequential(make_session, study_id)
    if res is None:
        return
    st.subheader("Stopping rule")
    st.caption(f"{res.comparison}. {res.rule}.")
    unblinded = bool(st.session_state.get(state.ADMIN_UNBLIND))
    st.dataframe(look_rows(res, unblinded=unblinded), hide_index=True)
    st.markdown(f"**Now:** {res.decision if unblinded else res.blinded_decision}")


def _status_section(status: StudyStatus) -> None:
    """What `lookalike study status` prints: participants per status, places, answers per unit."""
    st.subheader("Status (as `lookalike study status`)")
    places = "unlimited" if status.places_left is None else f"{status.places_left} of {status.max_participants}"
    st.caption(f"Places left: {places}. Time limit: {status.time_limit_minutes} minutes without an answer.")
    st.dataframe([{s.replace("_", " "): n for s, n in status.participants.items()}], hide_index=True)
    target = f"units with {status.judgements_per_unit} answers"
    st.dataframe(
        [
            {
                "protocol": p.protocol,
                "units": p.units,
                "answered per unit": f"{p.answered_min}..{p.answered_max}",
                "by completed participants": f"{p.completed_min}..{p.completed_max}",
                "held by active participants": p.held,
                **({target: p.reached_target} if status.judgements_per_unit else {}),
            }
            for p in status.protocols
        ],
        hide_index=True,
    )
