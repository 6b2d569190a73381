"""The accessibility audit's helpers: axe-core (PyPI ``axe-playwright-python``) on a served page at
both screen sizes, and a walk through every participant screen of a study, by mouse or by keyboard
alone. Used by tests/test_accessibility.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from survey.study.texts import Catalog

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
VIEWPORTS = {"390x844": PHONE, "1366x768": LAPTOP}
#: The impacts the audit fails on (axe-core's two highest of minor, moderate, serious, critical).
FAILING = ("serious", "critical")
#: axe-core rules that Streamlit's own widgets break where the study cannot fix them: rule -> why.
#: Empty: every serious or critical rule passes on every screen. A rule goes here only with the
#: element and the reason, and the README's "Accessibility" section names it too.
ALLOWED: dict[str, str] = {}


@dataclass
class Audit:
    """Serious and critical violations per (screen, viewport): rule id -> number of elements."""

    found: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    details: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def failures(self) -> dict[tuple[str, str], dict[str, int]]:
        return {
            k: {r: n for r, n in v.items() if r not in ALLOWED} for k, v in self.found.items() if set(v) - set(ALLOWED)
        }


def idle(page) -> None:
    """Streamlit has finished its rerun: nothing stale, nothing running, every image loaded."""
    page.wait_for_function(
        """() => !document.querySelector('[data-stale="true"]')
            && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
            && [...document.images].every(i => i.complete && i.naturalWidth > 0)""",
        timeout=30_000,
    )
    page.wait_for_timeout(150)  # the last deltas of a run arrive after the running icon went


def shows(page, text: str, timeout_ms: int = 30_000) -> None:
    page.wait_for_function("(t) => document.body.innerText.includes(t)", arg=text, timeout=timeout_ms)
    idle(page)


def audit(page, axe, audit_: Audit, screen: str) -> None:
    """axe-core on the page now, at 390x844 and at 1366x768 (back to 1366x768 afterwards)."""
    for name, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        idle(page)
        result = axe.run(page).response
        bad = [v for v in result["violations"] if v["impact"] in FAILING]
        audit_.found[(screen, name)] = {v["id"]: len(v["nodes"]) for v in bad}
        audit_.details[(screen, name)] = [
            f"{v['id']} ({v['impact']}): {n['target']} {n['html'][:160]}" for v in bad for n in v["nodes"]
        ]
    page.set_viewport_size(LAPTOP)


def plain(markdown: str) -> str:
    """A catalog text's first line as the page shows it (no Markdown marks)."""
    first = next(line for line in markdown.strip().splitlines() if line.strip())
    return re.sub(r"[#*_]", "", first).strip()


# ---- the screen a participant is on ------------------------------------------------------------


def screen_of(page, t: Catalog) -> str:
    """Which screen is shown, by its texts (the study's language)."""
    shows_any = [
        ("done", t.fmt("completion_code", code="").split("*")[0].strip()),
        ("questions", plain(t["questions"])),
        ("rating", t["rating_question"]),
        ("pairwise", t["pairwise_question"]),
        ("ranking", t["ranking_best"]),
        ("swipe choose", t["swipe_choose_prompt"]),
        ("swipe pick", t["swipe_pick_prompt"]),
        ("swipe rate", t["swipe_rate_question"]),
        ("swipe judge", t["swipe_judge_prompt"].split("(")[0].strip()),
    ]
    page.wait_for_function(
        "(ts) => ts.some(t => document.body.innerText.includes(t))", arg=[s for _, s in shows_any], timeout=30_000
    )
    idle(page)
    body = page.inner_text("body")
    return next(name for name, text in shows_any if text in body)


@dataclass(frozen=True)
class Hands:
    """How a participant acts: ``choose(group, label)`` picks a radio option of the n-th group,
    ``tick(label)`` ticks a checkbox, ``press(name)`` presses a button."""

    choose: Callable[[int, str], None]
    tick: Callable[[str], None]
    press: Callable[[str], None]
    key: Callable[[str], None]


def mouse(page) -> Hands:
    def choose(group: int, label: str) -> None:
        page.get_by_role("radiogroup").nth(group).get_by_text(label, exact=True).click()

    return Hands(
        choose,
        lambda label: page.get_by_test_id("stCheckbox").filter(has_text=re.compile(f"^{re.escape(label)}$")).click(),
        lambda name: page.get_by_role("button", name=name, exact=True).click(),
        page.keyboard.press,
    )


def keyboard(page) -> Hands:
    """Tab, the arrow keys, Space and Enter only: focus moves by Tab until it reaches the control."""

    def tab_to(js_test: str, arg: str, limit: int = 80) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"(arg) => {{ const el = document.activeElement; return !!el && ({js_test}); }}", arg):
                return
        raise AssertionError(f"Tab never reached {arg!r} ({js_test}) in {limit} presses")

    def choose(group: int, label: str) -> None:
        # Tab into the group (its first option, or the checked one), then arrows to the option
        tab_to(
            "el.type === 'radio' && [...document.querySelectorAll('[role=radiogroup]')].indexOf("
            "el.closest('[role=radiogroup]')) === Number(arg)",
            str(group),
        )
        for _ in range(10):
            if page.evaluate("() => document.activeElement.closest('label').innerText.trim()") == label:
                break
            page.keyboard.press("ArrowRight")
        else:
            raise AssertionError(f"the arrow keys never reached the option {label!r}")
        page.keyboard.press("Space")

    def tick(label: str) -> None:
        tab_to("el.type === 'checkbox' && el.closest('label').innerText.trim() === arg", label)
        page.keyboard.press("Space")

    def press(name: str) -> None:
        tab_to("(el.tagName === 'BUTTON' || el.tagName === 'A') && el.innerText.trim().startsWith(arg)", name)
        page.keyboard.press("Enter")

    return Hands(choose, tick, press, page.keyboard.press)
