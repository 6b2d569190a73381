"""The participant page's submit callbacks (survey/web/views/submits.py): an answer is stored in the
callback of its submit button, so a failed store must leave nothing behind and keep the form."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from db.models import Response
from survey.participants import service
from tests.apptest import app, click, rendered


def _responses(make_session) -> list[int | None]:
    with make_session() as s:
        return list(s.scalars(select(Response.rating)))


def test_a_submit_the_database_refuses_stores_nothing_says_so_and_keeps_the_answer(monkeypatch, study_db):
    db, make_session, _ = study_db
    at = click(click(app(monkeypatch, db), "I agree, start"), "Start")
    assert "Screen 1 of" in rendered(at) and at.radio[0].label.startswith("How similar")  # rating
    store = service.submit_rating

    def unreachable(*args, **kwargs):
        raise OperationalError("INSERT INTO responses", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(service, "submit_rating", unreachable)
    at.radio[0].set_value(3)
    click(at, "Submit")
    assert at.exception == [] and len(at.error) == 1 and "briefly unavailable" in at.error[0].value
    assert _responses(make_session) == []
    assert "Screen 1 of" in rendered(at) and at.radio[0].value == 3  # the same screen, the answer still chosen

    monkeypatch.setattr(service, "submit_rating", store)  # the database is back: submitting again stores it once
    click(at, "Submit")
    assert at.exception == [] and not at.error and "Screen 2 of" in rendered(at)
    assert _responses(make_session) == [3]
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Response)) == 1
