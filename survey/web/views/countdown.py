"""The redirect countdown on the last screen: "You will be taken back ... in N seconds", then the
recruitment site. It runs in the browser (a Streamlit ``components.v2`` component in the page), so it
keeps going whatever the server does.

Accessible: the participant can stop it ("Stay on this page": WCAG 2.2.1, a time limit the user can
turn off; a ``<meta http-equiv="refresh">`` could not be stopped and fails axe-core's ``meta-refresh``);
with ``prefers-reduced-motion: reduce`` the number does not tick (the sentence stays as first shown;
the redirect still comes); it is not announced every second (``aria-live="off"``). The page's link
button redirects at once.
"""

from __future__ import annotations

import streamlit as st

from survey.study import texts

_HTML = """<div class="lookalike-redirect"><p aria-live="off"><span class="lookalike-before"></span><span
class="lookalike-countdown"></span><span class="lookalike-after"></span></p><button type="button"></button></div>"""
_CSS = """.lookalike-redirect button { font: inherit; padding: 0.4rem 0.8rem; border: 1px solid #31333f;
border-radius: 0.5rem; background: #ffffff; color: #31333f; cursor: pointer; }"""
_JS = """
export default function(component) {
  const { data, parentElement } = component;
  const box = parentElement.querySelector('.lookalike-redirect');
  if (box.dataset.running === data.url) return;  // this countdown runs already
  box.dataset.running = data.url;
  const [before, after] = data.sentence.split('{seconds}');
  box.querySelector('.lookalike-before').textContent = before;
  box.querySelector('.lookalike-after').textContent = after;
  const digits = box.querySelector('.lookalike-countdown');
  const button = box.querySelector('button');
  button.textContent = data.stop;
  const still = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  let left = data.seconds;
  digits.textContent = String(left);
  const timer = setInterval(() => {
    left -= 1;
    if (!still) digits.textContent = String(Math.max(left, 0));
    if (left <= 0) { clearInterval(timer); window.location.assign(data.url); }
  }, 1000);
  button.addEventListener('click', () => {
    clearInterval(timer);
    box.querySelector('p').textContent = data.stopped;
    button.remove();
  });
}
"""


@st.cache_resource
def _component():
    # registered once per process: Streamlit warns when a name is registered again
    return st.components.v2.component("lookalike_countdown", html=_HTML, css=_CSS, js=_JS, isolate_styles=False)


def countdown(url: str, seconds: int, t: texts.Catalog) -> None:
    """The countdown to ``url`` (``seconds``), in the study's texts."""
    _component()(
        key="lookalike-countdown",
        data={
            "url": url,
            "seconds": seconds,
            "sentence": t["redirect_countdown"],
            "stop": t["redirect_stop"],
            "stopped": t["redirect_stopped"],
        },
    )
