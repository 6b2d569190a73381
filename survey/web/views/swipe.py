"""The swipe round's screens (:mod:`survey.participants.swipes`): choose, pick, judge, rate.

Phones first: one product filling the width with two big buttons under it that a thumb reaches
(Not for me on the left, Like on the right); the judged set stays one row of small products above
the product being judged (the phone CSS of :mod:`survey.web.views.products`). On a computer the
arrow keys press the buttons (Streamlit's own ``shortcut``: ← Not for me, → Like). Every press
stores one answer through the service, once per session and swipe (:func:`store_once`).
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from survey.participants import service
from survey.participants.swipes import SwipeView
from survey.study import media, texts
from survey.study.config import StudyConfig
from survey.web.views import products
from survey.web.views.submits import choose_one, form_error, refuse, store_once

Sessions = sessionmaker[Session]

#: Width of the product being swiped (the largest thumbnail of survey.study.media.WIDTHS); the CSS
#: below stretches it to the column's width (at most 360 px: a phone's width).
PRODUCT_PX = 240

SWIPE_CSS = """<style>
.st-key-swipe-product { max-width: 360px; }
.st-key-swipe-product-judged { max-width: 200px; }  /* under the set: the buttons stay on a phone's screen */
[class*="st-key-swipe-product"] [data-testid="stFullScreenFrame"],
[class*="st-key-swipe-product"] [data-testid="stFullScreenFrame"] > div,
[class*="st-key-swipe-product"] [data-testid="stImage"],
[class*="st-key-swipe-product"] [data-testid="stImageContainer"],
[class*="st-key-swipe-product"] img { width: 100% !important; max-width: 100% !important; height: auto !important; }
.st-key-swipe-buttons { max-width: 480px; }
.st-key-swipe-buttons button { min-height: 3.5rem; font-size: 1.15rem; }
@media (max-width: 640px) {
  .st-key-swipe-buttons [data-testid="stHorizontalBlock"] { flex-wrap: nowrap !important; }
  .st-key-swipe-buttons [data-testid="stColumn"] { min-width: 0 !important; flex: 1 1 0 !important; }
}
</style>"""


def instructions(config: StudyConfig, t: texts.Catalog) -> list[str]:
    """How a round goes, with the pick and the rating when the study asks for them."""
    out = [t["instructions_swipe"]]
    if config.swipe_reference == "pick":
        out.append(t.fmt("instructions_swipe_pick", likes=config.swipe_pick_after))
    if config.swipe_rate_similarity:
        out.append(t["instructions_swipe_rate"])
    return out


def page(make_session: Sessions, token: str, trial: service.TrialView, t: texts.Catalog) -> None:
    """The round's screen now."""
    screen = trial.swipe
    if screen is None:
        raise ValueError(f"trial {trial.trial_id} is a swipe round without a screen; the service drew none")
    st.html(SWIPE_CSS)
    {"choose": _choose, "judge": _judge, "pick": _pick, "rate": _rate}[screen.phase](
        make_session, token, trial.trial_id, screen, t
    )


def _product(path: str, alt: str, key: str = "swipe-product") -> None:
    with st.container(key=key):
        st.image(media.thumbnail(path, PRODUCT_PX), width="stretch", output_format="JPEG", alt=alt)


def _buttons(make_session: Sessions, token: str, swipe_id: int, t: texts.Catalog) -> None:
    """Not for me (←) and Like (→), side by side, full width."""
    with st.container(key="swipe-buttons"):
        left, right = st.columns(2, gap="small")
        for col, liked, label, key in ((left, False, "swipe_dislike", "Left"), (right, True, "swipe_like", "Right")):
            col.button(  # Streamlit shows the key (← / →) beside the label
                t[label],
                key=f"swipe-{swipe_id}-{'like' if liked else 'dislike'}",
                type="primary" if liked else "secondary",
                width="stretch",
                shortcut=key,
                on_click=_swipe,
                args=(make_session, token, swipe_id, liked),
            )


def _swipe(make_session: Sessions, token: str, swipe_id: int, liked: bool) -> None:
    store_once(token, f"swipe-{swipe_id}", lambda: service.submit_swipe(make_session, token, swipe_id, liked))


def _choose(make_session: Sessions, token: str, trial_id: int, screen: SwipeView, t: texts.Catalog) -> None:
    st.markdown(f"**{t['swipe_choose_prompt']}**")
    st.markdown(
        t.fmt("swipe_choose_progress", shown=screen.shown, limit=screen.max_swipes)
    )  # a caption's grey fails AA
    assert screen.product_path is not None and screen.swipe_id is not None
    _product(screen.product_path, t["alt_swipe_product"])
    _buttons(make_session, token, screen.swipe_id, t)


def _judge(make_session: Sessions, token: str, trial_id: int, screen: SwipeView, t: texts.Catalog) -> None:
    assert screen.product_path is not None and screen.swipe_id is not None and screen.reference_path is not None
    left, right = st.columns([1, 4], gap="small")
    with left:
        products.reference(screen.reference_path, 72, t, label=t["swipe_your_product"], alt=t["alt_your_product"])
    with right:
        st.markdown(f"**{t['recommended']}**")
        products.grid_row(screen.set_paths, 72, t, numbered=True, key="set-swipe")
    st.markdown(f"**{t.fmt('swipe_judge_prompt', position=screen.position, total=len(screen.set_paths))}**")
    place = {"number": screen.position, "total": len(screen.set_paths)}
    _product(screen.product_path, t.fmt("alt_recommended", **place), "swipe-product-judged")
    _buttons(make_session, token, screen.swipe_id, t)


def _pick(make_session: Sessions, token: str, trial_id: int, screen: SwipeView, t: texts.Catalog) -> None:
    st.markdown(f"**{t['swipe_pick_prompt']}**")
    per_row = 3
    for row in range(0, len(screen.liked_paths), per_row):
        for col, i in zip(
            st.columns(per_row, gap="small"), range(row, min(row + per_row, len(screen.liked_paths))), strict=False
        ):
            with col:
                st.image(
                    media.thumbnail(screen.liked_paths[i], 150),
                    width=150,
                    output_format="JPEG",
                    alt=t.fmt("alt_liked", number=i + 1),
                )
                st.button(
                    t.fmt("swipe_pick", number=i + 1),
                    key=f"pick-{trial_id}-{i}",
                    width="stretch",
                    on_click=_picked,
                    args=(make_session, token, trial_id, i),
                )


def _picked(make_session: Sessions, token: str, trial_id: int, choice: int) -> None:
    store_once(token, f"pick-{trial_id}", lambda: service.submit_pick(make_session, token, trial_id, choice))


def _rate(make_session: Sessions, token: str, trial_id: int, screen: SwipeView, t: texts.Catalog) -> None:
    assert screen.reference_path is not None
    left, right = st.columns([1, 3], gap="large")
    with left:
        products.reference(screen.reference_path, 170, t, label=t["swipe_your_product"], alt=t["alt_your_product"])
    with right:
        st.markdown(f"**{t['recommended']}**")
        products.grid_row(screen.set_paths, 100, t, key="set-swipe")
    form = f"rate-{trial_id}"
    with st.form(key=form):
        choose_one(t["swipe_rate_question"], t.scale(), f"{form}-rating")
        form_error(form)
        st.form_submit_button(t["submit"], type="primary", on_click=_rated, args=(make_session, token, trial_id, t))


def _rated(make_session: Sessions, token: str, trial_id: int, t: texts.Catalog) -> None:
    form = f"rate-{trial_id}"
    value = st.session_state.get(f"{form}-rating")
    if value is None:
        return refuse(form, t["rating_missing"])
    store_once(token, form, lambda: service.submit_set_rating(make_session, token, trial_id, int(value)))
