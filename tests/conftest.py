from __future__ import annotations

import os
from pathlib import Path

import pytest

from db.engine import make_engine, make_sessionmaker
from tests.helpers import built_study_config, sqlite_copy


@pytest.fixture
def make_session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory) -> Path:
    """The demo generator at a small size: 4 categories x 8 products x 2 photos."""
    from similarity.catalogs.demo import generate_demo_catalog

    return generate_demo_catalog(tmp_path_factory.mktemp("catalog"), seed=3, per_category=8)


@pytest.fixture
def tiny_study(tmp_path, small_catalog):
    """A factory for quick studies on the small catalog: SSIM on raw photos (no weights), one reference per
    category, in a new SQLite file unless ``make_session`` is given; keyword arguments override any
    StudyConfig field. Returns (database path or None, session factory, StudyInfo)."""
    from survey.participants import service
    from survey.study.build import build_study
    from survey.study.config import Component, StudyConfig

    engines = []

    def make(name: str = "tiny", *, make_session=None, **overrides):
        db_path = None
        if make_session is None:
            db_path = tmp_path / f"{name}.db"
            engines.append(make_engine(f"sqlite:///{db_path}"))
            make_session = make_sessionmaker(engines[-1])
        fields = {
            "methods": (Component("ssim"),),
            "segmenters": (Component("none"),),
            "references_per_category": 1,
            **overrides,
        }
        build_study(make_session, StudyConfig(name=name, catalog=str(small_catalog), **fields), progress=False)
        return db_path, make_session, service.current_study(make_session, name)

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture(scope="session")
def built_study(tmp_path_factory, small_catalog):
    """A study built with all four default conditions on the small catalog (real weights),
    serving all three protocols (4 trials each + 1 attention check each) and one question."""
    from survey.study.build import build_study

    db_path = tmp_path_factory.mktemp("db") / "study.db"
    engine = make_engine(f"sqlite:///{db_path}")
    sessions = make_sessionmaker(engine)
    result = build_study(
        sessions, built_study_config(small_catalog), cache_dir=db_path.parent / "cache", progress=False
    )
    engine.dispose()
    return db_path, result


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server (Debian's binaries; .ci/run installs them). Without them the
    PostgreSQL variants are skipped, unless LOOKALIKE_REQUIRE_POSTGRES=1 (set by .ci/run) makes
    that a failure."""
    from db.pgserver import PostgresUnavailable, TempPostgres

    try:
        server = TempPostgres.start()
    except PostgresUnavailable as e:
        if os.environ.get("LOOKALIKE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here: {e}")
        pytest.skip(f"PostgreSQL server not available: {e}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database of each kind (a real PostgreSQL server, never a mock)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture(scope="session")
def pg_built_study(postgres, built_study, small_catalog):
    """The built study again, in a PostgreSQL template database (features come from the warm cache)."""
    from survey.study.build import build_study

    db_path, _ = built_study
    url = postgres.create_database("template")
    engine = make_engine(url)
    result = build_study(
        make_sessionmaker(engine),
        built_study_config(small_catalog),
        cache_dir=db_path.parent / "cache",
        progress=False,
    )
    engine.dispose()
    return url.rsplit("/", 1)[1], result


@pytest.fixture(params=["sqlite", "postgresql"])
def study_db(request, tmp_path, built_study):
    """A private copy of the built study, in SQLite and in PostgreSQL, so tests can answer freely.
    Yields (database URL, session factory, build result)."""
    if request.param == "sqlite":
        url, result = sqlite_copy(built_study, tmp_path), built_study[1]
    else:
        template, result = request.getfixturevalue("pg_built_study")
        url = request.getfixturevalue("postgres").create_database(template=template)
    engine = make_engine(url)
    yield url, make_sessionmaker(engine), result
    engine.dispose()


@pytest.fixture
def sqlite_study_db(tmp_path, built_study):
    """``study_db``, SQLite only (for what only SQLite has, e.g. file backups)."""
    url = sqlite_copy(built_study, tmp_path)
    engine = make_engine(url)
    yield url, make_sessionmaker(engine), built_study[1]
    engine.dispose()


@pytest.fixture(scope="session")
def _session_home(tmp_path_factory):
    return tmp_path_factory.mktemp("lookalike-home")


@pytest.fixture(autouse=True)
def _no_network_env(monkeypatch, _session_home):
    # Caches, thumbnails and image stores go to a folder of this test run, never to ~/.cache/lookalike;
    # tests that need their own home set LOOKALIKE_HOME again.
    monkeypatch.setenv("LOOKALIKE_HOME", str(_session_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")  # tests never download; test_weights unsets it explicitly
    monkeypatch.setenv("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    os.environ.pop("LOOKALIKE_STUDY", None)
