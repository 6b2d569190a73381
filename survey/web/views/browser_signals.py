"""What the participant's browser tells: a small script on every participant screen (a Streamlit
``components.v2`` component, mounted in the page itself, not in an iframe) that

- sets the page's language (``<html lang>``) to the study's, so that a screen reader reads German
  as German;
- reports the automation signals of :mod:`survey.participants.bot_signals` it sees:
  ``navigator.webdriver``, an answer pressed (a button, Enter or Space on one, an arrow key) while
  an image of the screen has not loaded, and a filled honeypot: a text field placed off-screen,
  ``aria-hidden`` and out of the Tab order, so that no person (with a mouse, a keyboard or a screen
  reader) meets it, while a script that fills every field does.

A report is sent only when the browser has something to report (at most once per signal and page),
so a person's browser never causes an extra run. The project's own browser tests, recognised by the
secret mark in their User-Agent (:func:`is_browser_test`), report nothing.
"""

from __future__ import annotations

import hmac
import logging

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from survey.participants import bot_signals
from survey.study import texts

log = logging.getLogger("lookalike.survey")
#: how a test browser signs its User-Agent: "... LookalikeTest/<the server's browser_test_mark>"
MARK_PREFIX = "LookalikeTest/"

_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  document.documentElement.lang = data.lang;
  const trap = parentElement.querySelector('input');
  parentElement.querySelector('.lookalike-trap-label').textContent = data.trap_label;
  if (!data.report) return;
  const seen = window.__lookalikeSignals || (window.__lookalikeSignals = {found: new Set(), sent: new Set()});
  const report = () => {
    if (navigator.webdriver) seen.found.add('webdriver');
    const fresh = [...seen.found].filter(name => !seen.sent.has(name));
    if (fresh.length) { fresh.forEach(name => seen.sent.add(name)); setTriggerValue('signals', fresh); }
  };
  if (!seen.listening) {
    seen.listening = true;
    const answered = (event) => {
      const onButton = event.target.closest && event.target.closest('button');
      const key = event.type === 'keydown' ? event.key : null;
      const arrow = key === 'ArrowLeft' || key === 'ArrowRight';  // the swipe buttons' shortcuts
      const pressed = onButton && (key === 'Enter' || key === ' ');
      if (key === null ? !onButton : !(arrow || pressed)) return;
      const images = [...document.querySelectorAll('[data-testid="stMain"] img')];
      if (images.some(img => !img.complete || img.naturalWidth === 0)) seen.found.add('early_answer');
    };
    document.addEventListener('click', answered, true);
    document.addEventListener('keydown', answered, true);
  }
  trap.addEventListener('input', () => { if (trap.value) { seen.found.add('honeypot'); report(); } });
  report();
}
"""
_HTML = """<div class="lookalike-trap" aria-hidden="true">
<label><span class="lookalike-trap-label"></span>
<input type="text" name="website" tabindex="-1" autocomplete="off"></label>
</div>"""
_CSS = ".lookalike-trap { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }"


@st.cache_resource
def _component():
    # registered once per process: Streamlit warns when a name is registered again
    return st.components.v2.component("lookalike_signals", html=_HTML, css=_CSS, js=_JS, isolate_styles=False)


def is_browser_test(user_agent: str, mark: str | None) -> bool:
    """Whether ``user_agent`` carries the test mark the server was started with (none: never)."""
    if not mark or MARK_PREFIX not in user_agent:
        return False
    return hmac.compare_digest(user_agent.rsplit(MARK_PREFIX, 1)[1].strip(), mark)


def mount(
    make_session: sessionmaker[Session], token: str | None, t: texts.Catalog, *, report: bool, screen: str = ""
) -> None:
    """The script on this screen; stores what it reports for the participant ``token`` (before
    consent there is none: ``report`` is then false). The script runs again when ``screen`` changes,
    and sends what it found since (an early answer is seen when pressed, sent with the next screen)."""
    result = _component()(
        key="lookalike-signals",
        data={"lang": t.language, "trap_label": t["honeypot_label"], "report": report, "screen": screen},
        height=0,
        on_signals_change=lambda: None,
    )
    names = result.signals
    if not names or token is None:
        return
    if not isinstance(names, list) or not set(names) <= bot_signals.BROWSER_SIGNALS:
        log.warning("a browser reported unknown signals %r; not stored", names)
        return
    bot_signals.record_browser_signals(make_session, token, names)
