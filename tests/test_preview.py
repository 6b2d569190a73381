"""The researcher's preview (survey/web/preview.py): the whole participant flow with a PREVIEW banner,
writing nothing to the study's database (row counts of every table unchanged)."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from db.models import AdminSignIn, Base
from survey.web.preview import key_is_valid, preview_key
from tests.apptest import admin_page, app, click


def _rows(make_session) -> dict[str, int]:
    with make_session() as s:
        return {name: s.scalar(select(func.count()).select_from(t)) for name, t in Base.metadata.tables.items()}


def _walk(at):
    """Consent, instructions, every trial (first option), questions: to the code."""
    at = click(click(at, "I agree, start"), "Start")
    while at.radio:
        assert "PREVIEW" in at.warning[0].value
        at.radio[0].set_value(at.radio[0].options[0] if not isinstance(at.radio[0].options[0], str) else 1)
        at = click(at, "Submit")
    return at


def test_serve_preview_runs_the_whole_flow_and_writes_nothing(monkeypatch, tiny_study):
    db, sessions, _ = tiny_study("prev", trials_per_participant=3, completion_code="PREV1")
    before = _rows(sessions)
    monkeypatch.setenv("LOOKALIKE_PREVIEW", "1")
    at = app(monkeypatch, db)
    assert "PREVIEW" in at.warning[0].value and "Welcome" in at.markdown[0].value
    at = _walk(at)
    at = click(at, "Finish")
    assert "PREV1" in at.success[0].value and "PREVIEW" in at.warning[0].value
    assert _rows(sessions) == before and before["participants"] == 0 and before["grids"] > 0


def test_the_admin_link_previews_with_its_key_and_a_wrong_key_is_refused(monkeypatch, tiny_study):
    db, sessions, study = tiny_study("prev2", trials_per_participant=2)
    before = _rows(sessions)
    monkeypatch.setenv("LOOKALIKE_ADMIN_PASSWORD", "pw")
    bad = app(monkeypatch, db, preview="0" * 32)
    assert "not valid" in bad.error[0].value and not bad.button
    expired = app(monkeypatch, db, preview=preview_key("pw", study.name, int(time.time()) - 1))
    assert "not valid" in expired.error[0].value and not expired.button  # a link expires
    at = _walk(app(monkeypatch, db, preview=preview_key("pw", study.name, int(time.time()) + 60)))
    assert "Almost done" in " ".join(m.value for m in at.markdown)
    after = _rows(sessions)  # nothing written but the sign-in attempts of the links (below)
    assert after.pop("admin_sign_ins") == 3 and after == {k: v for k, v in before.items() if k != "admin_sign_ins"}
    page = admin_page(f"sqlite:///{db}", monkeypatch, "pw")
    page.text_input[0].input("pw")
    page.button[0].click().run()
    (link,) = [b for b in page.get("link_button") if b.label == "Preview the participant flow"]
    key = link.url.removeprefix("./?preview=")
    expires = int(key.split("-", 1)[0])
    assert key == preview_key("pw", study.name, expires) and key_is_valid(key, "pw", study.name)
    assert 29 * 60 < expires - time.time() <= 30 * 60  # valid for the idle time of a sign-in (30 minutes)
    with sessions() as s:  # every preview key given was a limited sign-in attempt, logged
        outcomes = list(s.scalars(select(AdminSignIn.outcome).where(AdminSignIn.target == "preview")))
    assert outcomes == ["failure", "failure", "success"]
