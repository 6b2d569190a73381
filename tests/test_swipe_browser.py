"""A participant completes a swipe study in Chromium through `lookalike serve`: with the buttons on a
390x844 phone, with the arrow keys on a 1366x768 laptop. Screenshots of the choose and judge screens
go to $LOOKALIKE_TEST_ARTIFACTS/screenshots (default .artifacts)."""

from __future__ import annotations

import re

import pytest

from db.engine import make_engine, make_sessionmaker
from db.pgserver import free_port
from survey.study.export import tables
from tests.helpers import build_tiny_study
from tests.served import ARTIFACTS, Server, launch, needs_chromium

pytestmark = [needs_chromium, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
ROUNDS = 2


@pytest.fixture(scope="module")
def served_swipe(tmp_path_factory, small_catalog, feature_cache):
    """A swipe study (two rounds of SSIM sets, at most 3 swipes to choose), served once."""
    db = tmp_path_factory.mktemp("swipe") / "swipe.db"
    engine = make_engine(f"sqlite:///{db}")
    study = build_tiny_study(
        make_sessionmaker(engine),
        small_catalog,
        feature_cache,
        "swipe",
        protocols=("swipe",),
        trials_per_participant=ROUNDS,
        swipe_pool_per_category=6,
        swipe_max_swipes=3,
        ask_comment=False,
    )
    server = Server(f"sqlite:///{db}", free_port()).start()
    yield server.url, make_sessionmaker(engine), study.id
    server.stop()
    engine.dispose()


def _idle(page) -> None:
    page.wait_for_function(
        """() => !document.querySelector('[data-stale="true"]')
            && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
            && [...document.images].every(i => i.complete && i.naturalWidth > 0)""",
        timeout=30_000,
    )


def _screen(page) -> str:
    """choose, judge or done, once the screen has settled."""
    page.wait_for_function(
        """() => ['Do you like this product?', 'would you like it?', 'Your completion code']
            .some(t => document.body.innerText.includes(t))""",
        timeout=30_000,
    )
    _idle(page)
    body = page.inner_text("body")
    return "done" if "Your completion code" in body else "choose" if "Do you like this product?" in body else "judge"


def _check_phone(page, screen: str) -> None:
    """The product fills the phone's width; the two buttons sit side by side under it, on the screen;
    a judged set stays one row."""
    # Streamlit sizes the image to its column after it has loaded: wait for that
    box, wide = (
        (".st-key-swipe-product", 0.8 * PHONE["width"]) if screen == "choose" else (".st-key-swipe-product-judged", 150)
    )
    page.wait_for_function(
        f"(document.querySelector('{box} img')?.getBoundingClientRect().width ?? 0) >= {wide}", timeout=10_000
    )
    product = page.locator(f"{box} img").bounding_box()
    buttons = [b.bounding_box() for b in page.locator(".st-key-swipe-buttons button").all()]
    assert product is not None and product["width"] >= wide, product
    assert len(buttons) == 2 and abs(buttons[0]["y"] - buttons[1]["y"]) < 2  # one row: a thumb reaches both
    assert all(b["height"] >= 48 for b in buttons)  # big enough to hit
    assert max(b["y"] + b["height"] for b in buttons) <= PHONE["height"]  # no scrolling to answer
    if screen == "judge":
        imgs = [i.bounding_box() for i in page.locator(".st-key-set-swipe img").all()]
        assert len(imgs) == 5 and max(b["y"] for b in imgs) - min(b["y"] for b in imgs) < 2
        assert max(b["x"] + b["width"] for b in imgs) <= PHONE["width"] + 1


def _complete(page, viewport: dict, use_keys: bool) -> list[str]:
    """Swipe through the study: the second product of each choose phase is liked (the first not),
    judged products alternately; returns the screens seen."""
    out = ARTIFACTS / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    seen: list[str] = []
    size = f"{viewport['width']}x{viewport['height']}"
    while (screen := _screen(page)) != "done":
        if screen not in seen:
            page.screenshot(path=str(out / f"swipe-{screen}-{size}.png"))
        if viewport is PHONE:
            _check_phone(page, screen)
        like = len(seen) % 2 == 1
        seen.append(screen)
        before = page.locator('[class*="st-key-swipe-product"] img').get_attribute("src")
        if use_keys:
            page.keyboard.press("ArrowRight" if like else "ArrowLeft")
        else:
            # anchored: the image's fullscreen button is named after its text alternative ("... to like or
            # not"); the answer buttons' names start with their label (Streamlit adds the shortcut key)
            label = "^Like" if like else "^Not for me"
            page.get_by_role("button", name=re.compile(label)).click()
        page.wait_for_function(
            """([before]) => document.body.innerText.includes('Your completion code')
                || (document.querySelector('[class*="st-key-swipe-product"] img')?.src ?? before) !== before""",
            arg=[before],
            timeout=30_000,
        )
    return seen


@pytest.mark.parametrize(
    "viewport, use_keys", [(PHONE, False), (LAPTOP, True)], ids=["390x844-buttons", "1366x768-arrow-keys"]
)
def test_a_participant_completes_a_swipe_study(served_swipe, viewport, use_keys):
    from playwright.sync_api import sync_playwright

    url, make_session, study_id = served_swipe
    before = len(tables(make_session, study_id)["swipe_rounds"])
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport=viewport)
        page.goto(url)
        page.get_by_role("button", name="I agree, start").click()
        page.get_by_role("button", name="Start", exact=True).click()
        seen = _complete(page, viewport, use_keys)
        browser.close()
    assert {"choose", "judge"} <= set(seen)
    out = tables(make_session, study_id)
    rounds = out["swipe_rounds"].iloc[before:]
    assert len(rounds) == ROUNDS and set(rounds["outcome"]) <= {"judged", "no_like"}
    mine = out["swipes"][out["swipes"]["participant"] == rounds["participant"].iloc[0]]
    assert len(mine) == len(seen) and mine["liked"].notna().all()  # every press stored, once
