"""Phones: on a 390x844 screen every set's products stay together in one row and one screen height,
the product above them; studies that refuse phones say so politely. Screenshots of each protocol's
trial at 390x844 and 1366x768 go to $LOOKALIKE_TEST_ARTIFACTS/screenshots (default .artifacts)."""

from __future__ import annotations

import pytest

from db.pgserver import free_port
from tests.helpers import build_tiny_study
from tests.served import ARTIFACTS, Server, launch, needs_chromium, settled

pytestmark = [needs_chromium, pytest.mark.slow]  # real browser, real servers, EfficientNet weights
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(scope="module")
def served_three_protocols(tmp_path_factory, small_catalog, feature_cache):
    """One server for both screen sizes (each test takes the study as a participant of its own)."""
    from db.engine import make_engine, make_sessionmaker
    from survey.study.config import Component

    db = tmp_path_factory.mktemp("phones") / "phones.db"
    engine = make_engine(f"sqlite:///{db}")
    build_tiny_study(
        make_sessionmaker(engine),
        small_catalog,
        feature_cache,
        "phones",
        methods=(Component("ssim"), Component("efficientnet")),
        protocols=("rating", "pairwise", "ranking"),
        trials_per_participant=1,
        rating_item_ticks=True,
        ask_comment=False,
    )
    engine.dispose()
    server = Server(f"sqlite:///{db}", free_port()).start()
    yield server.url
    server.stop()


def _protocol(page) -> str:
    body = page.inner_text("body")
    if "Most similar set" in body:
        return "ranking"
    if "Which set is more similar" in body:
        return "pairwise"
    return "rating"


def _boxes(page, selector: str) -> list[dict]:
    return [b for b in (el.bounding_box() for el in page.locator(selector).all()) if b is not None]


def _check_phone_screen(page) -> None:
    """Every set: all its products in one row, inside one viewport height; the product above the first set."""
    sets = [
        el for el in page.locator('[class*="st-key-set-"]').all() if "ticks" not in (el.get_attribute("class") or "")
    ]
    assert sets
    for el in sets:
        imgs = [b for b in (i.bounding_box() for i in el.locator("img").all()) if b is not None]
        assert len(imgs) == 5, len(imgs)
        top, bottom = min(b["y"] for b in imgs), max(b["y"] + b["height"] for b in imgs)
        assert bottom - top <= PHONE["height"], (top, bottom)  # one screen height
        assert max(b["y"] for b in imgs) - top < 2  # one row, not stacked
        assert max(b["x"] + b["width"] for b in imgs) <= PHONE["width"] + 1  # nothing off the right edge
    (ref,) = _boxes(page, ".st-key-reference img")
    first = min(b["y"] for b in _boxes(page, '[class*="st-key-set-"] img'))
    assert ref["y"] < first and first + 80 - ref["y"] <= PHONE["height"]  # the product with the first set


def _answer(page, protocol: str) -> None:
    if protocol == "rating":
        page.get_by_text("4 · somewhat similar").click()
    elif protocol == "pairwise":
        page.get_by_text("Equally similar").click()
    else:
        page.get_by_role("radiogroup").nth(0).get_by_text("Set 1").click()
        page.get_by_role("radiogroup").nth(1).get_by_text("Set 2").click()
    page.get_by_role("button", name="Submit", exact=True).click()


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390x844", "1366x768"])
def test_each_protocol_keeps_its_sets_together(served_three_protocols, viewport):
    from playwright.sync_api import sync_playwright

    out = ARTIFACTS / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    seen = []
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport=viewport)
        page.goto(served_three_protocols)
        page.get_by_role("button", name="I agree, start").click()
        page.get_by_role("button", name="Start", exact=True).click()
        for n in range(1, 4):
            settled(page, f"Screen {n} of 3")
            page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            protocol = _protocol(page)
            page.screenshot(path=str(out / f"{protocol}-{viewport['width']}x{viewport['height']}.png"))
            if viewport is PHONE:
                _check_phone_screen(page)
            seen.append(protocol)
            _answer(page, protocol)
        browser.close()
    assert seen == ["rating", "pairwise", "ranking"]


def test_a_study_without_phones_asks_for_a_computer(tiny_study):
    from playwright.sync_api import sync_playwright

    db, _, _ = tiny_study("desk", trials_per_participant=1, allow_mobile=False)
    server = Server(f"sqlite:///{db}", free_port()).start()
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            phone = browser.new_page(viewport=PHONE, user_agent=IPHONE_UA)
            phone.goto(server.url)
            settled(phone, "Please use a computer")
            assert phone.get_by_role("button", name="I agree, start").count() == 0
            laptop = browser.new_page(viewport=LAPTOP)
            laptop.goto(server.url)
            settled(laptop, "Do you agree to take part?")
            laptop.get_by_role("button", name="I agree, start").click()
            settled(laptop, "How it works")
            phone.goto(laptop.url)  # the same participant continues on a phone
            settled(phone, "Please use a computer")
            assert phone.get_by_role("button", name="Start", exact=True).count() == 0
            browser.close()
    finally:
        server.stop()
