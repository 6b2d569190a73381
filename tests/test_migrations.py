"""Schema migrations (Alembic), on SQLite and on a real PostgreSQL server: an older database
upgrades in place without losing rows, the models and the migrations agree, and the start-up
check refuses outdated and newer schemas."""

from __future__ import annotations

import sqlite3
from collections import Counter

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from db import migrate
from db.engine import make_engine, make_sessionmaker
from db.models import Base, Participant, Response, Study, Trial
from survey.participants import planning, service
from tests.helpers import answer_all


def _counts(engine) -> dict[str, int]:
    with engine.connect() as con:
        return {t: con.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in Base.metadata.tables}


def _downgraded_copy(study_db, revision: str):
    """The answered study at an older schema revision (what an older Lookalike left behind)."""
    url, make_session, _ = study_db
    study = service.current_study(make_session)
    for seed in range(2):
        rng = np.random.default_rng(seed)
        answer_all(
            make_session, service.start_participant(make_session, study.id, {"PROLIFIC_PID": f"p{seed}"}, rng), rng
        )
    engine = create_engine(url)
    before = _counts(engine)
    with engine.begin() as con:
        command.downgrade(migrate._config(con), revision)
    return engine, before


def test_models_and_migrations_agree(db_url):
    engine = create_engine(db_url)
    with engine.begin() as con:
        command.upgrade(migrate._config(con), "head")
    with engine.connect() as con:
        diff = compare_metadata(MigrationContext.configure(con, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models differ from the migrations: {diff}"
    engine.dispose()


def test_empty_database_is_created_at_head(db_url):
    engine = make_engine(db_url)
    state = migrate.schema_state(engine)
    assert state.up_to_date and state.current == migrate.head_revision() and not state.empty
    engine.dispose()
    make_engine(db_url).dispose()  # reopening is fine


def test_older_revision_is_refused_then_upgraded_in_place_without_losing_rows(study_db):
    engine, before = _downgraded_copy(study_db, "0001")
    assert "uq_participants_study_external" not in {i["name"] for i in inspect(engine).get_indexes("participants")}
    with pytest.raises(migrate.SchemaOutdated, match="lookalike db upgrade"):
        make_engine(study_db[0])
    assert migrate.upgrade(engine) == ("0001", migrate.head_revision())
    assert _counts(engine) == before and before["responses"] > 0
    fresh = make_engine(study_db[0])  # the start-up check passes now
    with make_sessionmaker(fresh)() as s:
        assert s.scalar(select(func.count()).select_from(Response)) == before["responses"]
    fresh.dispose()
    engine.dispose()


def test_upgrade_refuses_duplicate_platform_ids_and_changes_nothing(study_db):
    engine, _ = _downgraded_copy(study_db, "0001")
    with engine.begin() as con:  # a race under the old schema could leave two rows for one PROLIFIC_PID
        con.execute(text("UPDATE participants SET external_id = 'same'"))
    with pytest.raises(RuntimeError, match="share a platform id.*'same' x2"):
        migrate.upgrade(engine)
    assert migrate.schema_state(engine).current == "0001"  # rolled back
    engine.dispose()


def test_pre_alembic_sqlite_database_is_stamped_and_upgraded(sqlite_study_db):
    url = sqlite_study_db[0]  # Lookalike 0.1 databases were SQLite files
    engine, before = _downgraded_copy(sqlite_study_db, "0001")
    engine.dispose()
    con = sqlite3.connect(url.split(":///", 1)[1])  # what Lookalike 0.1 wrote: schema version 2, no alembic
    con.execute("DROP TABLE alembic_version")
    con.execute("CREATE TABLE lookalike_schema (version INTEGER NOT NULL)")
    con.execute("INSERT INTO lookalike_schema VALUES (2)")
    con.commit()
    con.close()
    with pytest.raises(migrate.SchemaOutdated, match="pre-migration schema version 2"):
        make_engine(url)
    engine = create_engine(url)
    assert migrate.upgrade(engine) == ("legacy v2", migrate.head_revision())
    assert _counts(engine) == before
    assert "lookalike_schema" not in inspect(engine).get_table_names()
    engine.dispose()


def test_upgrade_fills_the_unit_counts_from_the_trials_and_new_starts_keep_them(study_db):
    _, make_session, _ = study_db
    engine, before = _downgraded_copy(study_db, "0002")
    assert "unit_counts" not in inspect(engine).get_table_names()
    with engine.connect() as con:  # what the assignment counted before 0003: every real trial, per unit
        trials = Counter(con.execute(text("SELECT unit FROM trials WHERE NOT is_catch")).scalars())
        catch = con.execute(text("SELECT COUNT(*) FROM trials WHERE is_catch")).scalar_one()
    assert catch > 0 and sum(trials.values()) > 0  # attention checks exist and must not be counted
    assert migrate.upgrade(engine) == ("0002", migrate.head_revision())
    study = service.current_study(make_session)
    with make_session() as s:
        assert planning.unit_counts(s, study.id) == trials
    assert _counts(engine) == before  # the counts the service kept before the downgrade, exactly
    rng = np.random.default_rng(5)
    answer_all(make_session, service.start_participant(make_session, study.id, {}, rng), rng)
    with make_session() as s:
        real = Counter(s.scalars(select(Trial.unit).where(Trial.is_catch.is_(False))))
        assert planning.unit_counts(s, study.id) == real != trials
    engine.dispose()


def test_unknown_newer_revision_is_refused(db_url):
    make_engine(db_url).dispose()
    engine = create_engine(db_url)
    with engine.begin() as con:
        con.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(migrate.SchemaTooNew, match="9999, written by a newer Lookalike"):
        make_engine(db_url)
    engine.dispose()


def test_one_participant_per_platform_id_is_enforced_by_the_database(study_db):
    _, make_session, _ = study_db
    with make_session.begin() as s:
        study = s.scalars(select(Study)).first()
        s.add(Participant(study_id=study.id, token="a" * 32, external_id="X", url_params={}, flags=[], demographics={}))
    with pytest.raises(IntegrityError), make_session.begin() as s:
        s.add(Participant(study_id=study.id, token="b" * 32, external_id="X", url_params={}, flags=[], demographics={}))
    with make_session.begin() as s:  # direct visitors (no platform id) never collide
        s.add_all(
            [
                Participant(study_id=study.id, token=c * 32, external_id=None, url_params={}, flags=[], demographics={})
                for c in "cd"
            ]
        )


def test_a_pre_versioning_database_is_refused_and_not_upgraded(tmp_path):
    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.execute("CREATE TABLE studies (id INTEGER PRIMARY KEY, name TEXT)")  # before schema versions existed
    con.commit()
    con.close()
    with pytest.raises(migrate.SchemaOutdated, match="pre-migration schema version 1"):
        make_engine(f"sqlite:///{old}")
    engine = create_engine(f"sqlite:///{old}")
    with pytest.raises(migrate.SchemaError, match="version 1 cannot be upgraded in place"):
        migrate.upgrade(engine)
    assert inspect(engine).get_table_names() == ["studies"]
    engine.dispose()


def test_cli_db_current_and_upgrade(study_db, capsys):
    from db.migrate import head_revision
    from survey.cli import main

    url, head = study_db[0], head_revision()
    _downgraded_copy(study_db, "0001")[0].dispose()
    assert main(["db", "current", "--db", url]) == 0
    assert f"schema 0001; this Lookalike needs {head} (run `lookalike db upgrade`)" in capsys.readouterr().out
    assert main(["report", "--db", url, "--out", "/dev/null"]) == 2
    assert "lookalike db upgrade" in capsys.readouterr().err
    assert main(["db", "upgrade", "--db", url]) == 0
    assert f"schema 0001 -> {head}" in capsys.readouterr().out
    assert main(["db", "upgrade", "--db", url]) == 0
    assert "already at the newest schema" in capsys.readouterr().out


def test_upgrade_from_0003_gives_every_participant_a_status_and_fills_the_answered_counts(study_db):
    url, make_session, _ = study_db
    study = service.current_study(make_session)
    rng = np.random.default_rng(9)
    partial = service.start_participant(make_session, study.id, {}, rng)  # answers one trial, then stops
    service.finish_instructions(make_session, partial)
    first = service.participant_state(make_session, partial).trial
    service.submit_rating(make_session, partial, first.trial_id, 4)
    engine, before = _downgraded_copy(study_db, "0003")  # two more who completed
    assert "status" not in {c["name"] for c in inspect(engine).get_columns("participants")}
    with engine.connect() as con:
        answers = Counter(
            con.execute(
                text("SELECT t.unit FROM responses r JOIN trials t ON t.id = r.trial_id WHERE NOT t.is_catch")
            ).scalars()
        )
        last = dict(
            con.execute(text("SELECT participant_id, MAX(created_at) FROM responses GROUP BY participant_id")).all()
        )
    assert migrate.upgrade(engine) == ("0003", migrate.head_revision())
    assert _counts(engine) == before
    with make_sessionmaker(make_engine(url))() as s:
        people = {p.token: p for p in s.scalars(select(Participant))}
        assert people.pop(partial).status == "active" and len(people) == 2
        assert {p.status for p in people.values()} == {"completed"}
        for p in s.scalars(select(Participant)):
            assert str(p.last_active_at)[:19] == str(last[p.id])[:19]
        assert planning.answered_counts(s, study.id) == {
            **dict.fromkeys(planning.unit_counts(s, study.id), 0),
            **answers,
        }
        assert all(p.comprehension_attempts == 0 for p in s.scalars(select(Participant)))
        assert not any(s.scalars(select(Trial.is_repeat)))
    engine.dispose()
