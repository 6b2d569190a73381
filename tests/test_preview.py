"""The researcher's preview (survey/web/preview.py): the whole participant flow with a PREVIEW banner,
writing nothing to the study's database (row counts of every table unchanged)."""

from __future__ import annotations

from sqlalchemy import func, select

from db.models import Base
from survey.web.preview import preview_key
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
    at = _walk(app(monkeypatch, db, preview=preview_key("pw", study.name)))
    assert "Almost done" in " ".join(m.value for m in at.markdown)
    assert _rows(sessions) == before
    page = admin_page(f"sqlite:///{db}", monkeypatch, "pw")
    page.text_input[0].input("pw")
    page.button[0].click().run()
    (link,) = [b for b in page.get("link_button") if b.label == "Preview the participant flow"]
    assert link.url == f"./?preview={preview_key('pw', study.name)}"
