"""Accessibility: axe-core finds no serious or critical violation on any participant screen (consent,
instructions, practice, every protocol, questions, every ending, "stop and leave"), in English and
German, at 390x844 and 1366x768; the English participant takes the whole study with the keyboard
alone (Tab, arrow keys, Space, Enter) in Debian's Chromium. One study per language in one database,
one server per language, one browser; the audit's table is printed (pytest -s)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from db.engine import make_engine, make_sessionmaker
from db.models import Participant, utcnow
from db.pgserver import free_port
from survey.participants import comprehension, service
from survey.study.config import Question
from survey.study.export import tables
from survey.study.texts import Catalog
from tests import a11y
from tests.helpers import build_tiny_study
from tests.served import Server, launch, needs_chromium, participant_token

pytestmark = [needs_chromium, pytest.mark.slow]
STUDY = {
    "protocols": ("rating", "pairwise", "ranking", "swipe"),
    "trials_per_participant": 1,
    "rating_item_ticks": True,
    "comprehension": 1,
    "swipe_pool_per_category": 6,
    "swipe_max_swipes": 3,
    "swipe_reference": "pick",
    "swipe_pick_after": 2,
    "swipe_rate_similarity": True,
    "completion_code": "A11Y-OK",
    "redirect_url": "https://example.org/complete?cc=A11Y-OK",
    "redirect_seconds": 60,
}
QUESTION = {
    "en": Question("age", "Your age", ("under 30", "30 or older")),
    "de": Question("age", "Ihr Alter", ("unter 30", "30 oder älter")),
}


@pytest.fixture(scope="module")
def served_languages(tmp_path_factory, small_catalog, feature_cache):
    """The study in English and in German (one database), each served by its own process."""
    from survey.study.config import Component

    db = tmp_path_factory.mktemp("a11y") / "a11y.db"
    engine = make_engine(f"sqlite:///{db}")
    sessions = make_sessionmaker(engine)
    for lang in ("en", "de"):
        build_tiny_study(
            sessions,
            small_catalog,
            feature_cache,
            f"a11y-{lang}",
            methods=(Component("ssim"), Component("efficientnet")),
            language=lang,
            demographics=(QUESTION[lang],),
            **STUDY,
        )
    servers = {
        lang: Server(f"sqlite:///{db}", free_port(), env={"LOOKALIKE_STUDY": f"a11y-{lang}"}) for lang in ["en", "de"]
    }
    for server in servers.values():
        server.start()
    yield {lang: s.url for lang, s in servers.items()}, sessions
    for server in servers.values():
        server.stop()
    engine.dispose()


def _changes(page, act) -> None:
    """Do ``act`` and wait for the next screen (the page's text or images changed) to settle."""
    before = page.evaluate("() => document.body.innerText + [...document.images].map(i => i.src).join()")
    act()
    page.wait_for_function(
        "(b) => document.body.innerText + [...document.images].map(i => i.src).join() !== b", arg=before, timeout=30_000
    )
    a11y.idle(page)


def _practice(page, hands, t: Catalog, sessions, right: bool) -> None:
    key = comprehension.answer_key(sessions, participant_token(page))
    for i, k in enumerate(key):
        hands.choose(i, t.fmt("set", label="AB"[k if right else 1 - k]))
    _changes(page, lambda: hands.press(t["submit"]))


def _answer(page, hands, t: Catalog, screen: str, n: int) -> None:
    """Answer the screen the participant is on (``n``: how many screens came before)."""
    if screen == "rating":
        hands.tick("1")
        hands.choose(0, t["scale_4"])
    elif screen == "pairwise":
        hands.choose(0, t["pairwise_tie"])
    elif screen == "ranking":
        hands.choose(0, t.fmt("set", label=1))
        hands.choose(1, t.fmt("set", label=2))
    elif screen in ("swipe choose", "swipe judge"):  # like every product to choose; alternate when judging
        like = screen == "swipe choose" or n % 2 == 0
        _changes(page, lambda: hands.key("ArrowRight" if like else "ArrowLeft"))
        return
    elif screen == "swipe pick":
        _changes(page, lambda: hands.press(t.fmt("swipe_pick", number=1)))
        return
    elif screen == "swipe rate":
        hands.choose(0, t["scale_4"])
    elif screen == "questions":
        _changes(page, lambda: hands.press(t["finish"]))
        return
    _changes(page, lambda: hands.press(t["submit"]))


def _take_the_study(page, hands, t: Catalog, url: str, sessions, audit: a11y.Audit | None) -> list[str]:
    """Consent, instructions, a failed then a passed practice, every protocol, the questions, the
    code; each screen audited once when ``audit`` is given. Returns the screens seen in order."""

    def check(screen: str) -> None:
        if audit is not None and not any(s == screen for s, _ in audit.found):
            a11y.audit(page, axe, audit, screen)

    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page.goto(url)
    a11y.shows(page, a11y.plain(t["consent"]))
    check("consent")
    _changes(page, lambda: hands.press(t["agree"]))
    check("instructions")
    _changes(page, lambda: hands.press(t["start"]))
    check("practice")
    _practice(page, hands, t, sessions, right=False)
    check("practice, after a wrong answer")
    _practice(page, hands, t, sessions, right=True)
    seen = []
    while (screen := a11y.screen_of(page, t)) != "done":
        check(screen)
        seen.append(screen)
        _answer(page, hands, t, screen, len(seen))
        assert len(seen) < 30, seen
    check("done: code and redirect countdown")
    return seen


def _endings(browser, t: Catalog, url: str, sessions, audit: a11y.Audit) -> None:
    """Declining, "stop and leave" and its confirmation, returned, screened out, timed out."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def fresh():
        page = browser.new_context(viewport=a11y.LAPTOP).new_page()
        page.goto(url)
        a11y.shows(page, a11y.plain(t["consent"]))
        return page, a11y.mouse(page)

    page, hands = fresh()
    _changes(page, lambda: hands.press(t["decline"]))
    a11y.audit(page, axe, audit, "declined")
    page, hands = fresh()
    _changes(page, lambda: hands.press(t["agree"]))
    _changes(page, lambda: hands.press(t["leave"]))
    a11y.audit(page, axe, audit, "stop and leave: confirm")
    _changes(page, lambda: hands.press(t["leave_yes"]))
    a11y.audit(page, axe, audit, "returned")
    page, hands = fresh()
    _changes(page, lambda: hands.press(t["agree"]))
    _changes(page, lambda: hands.press(t["start"]))
    _practice(page, hands, t, sessions, right=False)
    _practice(page, hands, t, sessions, right=False)
    a11y.audit(page, axe, audit, "screened out")
    page, hands = fresh()
    _changes(page, lambda: hands.press(t["agree"]))
    with sessions.begin() as s:  # idle for longer than the time limit
        s.execute(
            update(Participant)
            .where(Participant.token == participant_token(page))
            .values(last_active_at=utcnow() - timedelta(hours=3))
        )
    page.reload()
    a11y.shows(page, a11y.plain(t["timed_out"]))
    a11y.audit(page, axe, audit, "timed out")


def _countdown(page, hands, t: Catalog) -> None:
    """The redirect countdown ticks; with prefers-reduced-motion it stands still; it can be stopped."""

    def digits_over(seconds: float) -> tuple[str, str]:
        first = page.inner_text(".lookalike-countdown")
        page.wait_for_timeout(seconds * 1000)
        return first, page.inner_text(".lookalike-countdown")

    first, later = digits_over(1.6)
    assert int(later) < int(first), (first, later)
    page.emulate_media(reduced_motion="reduce")
    page.reload()
    a11y.shows(page, t.fmt("completion_code", code="").split("*")[0].strip())
    first, later = digits_over(1.6)
    assert first == later == str(STUDY["redirect_seconds"])
    hands.press(t["redirect_stop"])
    page.wait_for_function("(s) => document.body.innerText.includes(s)", arg=t["redirect_stopped"])
    assert page.locator(".lookalike-countdown").count() == 0


def test_a_playwright_participant_without_the_test_mark_is_flagged(served_languages):
    """Chromium driven by Playwright as any bot would come (no test mark): navigator.webdriver is
    reported, so are filling the honeypot (as a form-filling script does) and pressing Submit before
    the screen's images have loaded; all three in the export."""
    from playwright.sync_api import sync_playwright

    urls, sessions = served_languages
    t = Catalog("en")
    with sync_playwright() as pw:
        browser = launch(pw, marked=False)
        page = browser.new_page(viewport=a11y.LAPTOP)
        page.goto(urls["en"])
        a11y.shows(page, a11y.plain(t["consent"]))
        _changes(page, lambda: page.get_by_role("button", name=t["agree"]).click())
        token = participant_token(page)
        _wait_for_signals(sessions, token, ["webdriver"])
        page.locator(".lookalike-trap input").fill("https://example.org")  # what a form-filling script does
        _wait_for_signals(sessions, token, ["honeypot", "webdriver"])
        held = []  # the practice screen's images, held back until the bot has pressed Submit
        page.route("**/media/**", lambda route: held.append(route))
        page.get_by_role("button", name=t["start"], exact=True).click()
        page.wait_for_function("() => document.querySelectorAll('[data-testid=stMain] img').length > 0")
        page.get_by_role("button", name=t["submit"], exact=True).click()  # refused: nothing chosen yet
        for route in held:  # let the images load now (unrouting then passes any later request on)
            route.continue_()
        page.unroute("**/media/**")
        a11y.shows(page, t["comprehension_missing"])
        _practice(page, a11y.mouse(page), t, sessions, right=True)  # the next screen sends what was seen
        _wait_for_signals(sessions, token, ["early_answer", "honeypot", "webdriver"])
        browser.close()
    study = service.current_study(sessions, "a11y-en")
    people = tables(sessions, study.id)["participants"]
    with sessions() as s:
        pid = s.scalar(select(Participant.id).where(Participant.token == token))
    me = people[people["participant"] == pid].iloc[0]
    assert (me["bot_signals"], me["browser_test"]) == ("early_answer;honeypot;webdriver", False)
    marked = people[people["participant"] != pid]  # this module's marked browsers: never flagged
    assert marked["browser_test"].all() and (marked["bot_signals"] == "").all()


def _wait_for_signals(sessions, token: str, expected: list[str], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with sessions() as s:
            found = s.scalar(select(Participant.bot_signals).where(Participant.token == token))
        if found == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the participant's signals are {found}, expected {expected}")
        time.sleep(0.3)


def _table(audit: a11y.Audit, lang: str) -> str:
    rows = [
        f"{lang} | {screen} | {size} | {sum(v.values())} | {', '.join(sorted(v)) or '-'}"
        for (screen, size), v in audit.found.items()
    ]
    return "\n".join(["language | screen | viewport | serious+critical elements | rules", *rows])


@pytest.mark.parametrize("lang", ["en", "de"])
def test_every_participant_screen_passes_axe_core(served_languages, lang):
    """English by keyboard alone, German by mouse; both audited on every screen at both sizes."""
    from playwright.sync_api import sync_playwright

    urls, sessions = served_languages
    t = Catalog(lang)
    audit = a11y.Audit()
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_context(viewport=a11y.LAPTOP).new_page()
        hands = a11y.keyboard(page) if lang == "en" else a11y.mouse(page)
        seen = _take_the_study(page, hands, t, urls[lang], sessions, audit)
        _countdown(page, hands, t)
        _endings(browser, t, urls[lang], sessions, audit)
        browser.close()
    print("\n" + _table(audit, lang))
    for key, lines in audit.details.items():
        if lines:
            print(key, *lines, sep="\n  ")
    assert {"rating", "pairwise", "ranking", "swipe choose", "swipe pick", "swipe judge", "swipe rate"} <= set(seen)
    assert len(audit.found) == 2 * 18  # every screen at both sizes
    assert audit.failures() == {}
    with sessions() as s:  # the keyboard participant's study is complete
        done = s.scalars(select(Participant.status).where(Participant.completed_at.is_not(None))).all()
        assert "completed" in done
