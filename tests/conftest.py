from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from filelock import FileLock

from db.engine import make_engine, make_sessionmaker
from tests.helpers import build_tiny_study, built_study_config, offline_env, sqlite_copy
from tests.served import needs_chromium, needs_nginx

#: Fixtures that build a real study (the shared one with EfficientNet and U2-Net weights, or a
#: tiny_study) or start PostgreSQL: every test that uses one, directly or through another fixture,
#: is marked ``slow``.
SLOW_FIXTURES = frozenset({"built_study", "pg_built_study", "study_db", "sqlite_study_db", "tiny_study", "postgres"})
#: Parametrised fixtures whose "postgresql" variant starts the PostgreSQL server (on demand, so the
#: server fixture is not among the test's fixture names).
POSTGRES_PARAMS = ("db_url", "study_db")
#: Modules whose every test runs something heavy that no fixture names: Ray's local cluster.
SLOW_MODULES = frozenset({"test_ray.py"})
#: Marks that say a test drives Debian's Chromium or nginx (tests/served.py).
SLOW_MARKS = (needs_chromium.mark, needs_nginx.mark)


def slow_reason(item: pytest.Item) -> str | None:
    """Why ``item`` is slow (a real study build, a browser, a server, Ray), or None."""
    fixtures = SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if fixtures:
        return f"uses {', '.join(sorted(fixtures))}"
    params = getattr(getattr(item, "callspec", None), "params", {})
    if any(params.get(name) == "postgresql" for name in POSTGRES_PARAMS):
        return "runs on PostgreSQL"
    if item.path.name in SLOW_MODULES:
        return f"in {item.path.name}"
    if any(mark in SLOW_MARKS for mark in item.iter_markers("skipif")):
        return "drives Chromium or nginx"
    return None


def shares_module_fixtures(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture its module sets up once for several tests (a server, a
    cluster): module-, class- or package-scoped, or session-scoped and defined in the module."""
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info is not None else ():
        for d in defs:
            if d.scope in ("module", "class", "package") or (d.scope == "session" and d.baseid.endswith(".py")):
                return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``slow`` mark, set from what a test uses (``make test-fast`` runs ``-m "not slow"``); and
    for pytest-xdist (``--dist loadgroup``), the tests of a module that share a module fixture in
    one group, so that each such fixture is set up once; every other test goes to any worker.
    First of this hook's implementations, so that the groups are set before pytest-xdist reads them."""
    for item in items:
        if slow_reason(item) is not None:
            item.add_marker(pytest.mark.slow)
        if shares_module_fixtures(item):
            item.add_marker(pytest.mark.xdist_group(item.path.name))
            if getattr(config.option, "loadgroup", False):  # an xdist worker of a --dist loadgroup run
                in_group(item, item.path.name)


def in_group(item: pytest.Item, group: str) -> None:
    """Give ``item`` the id that puts it in xdist ``group``: its id + ``@group``, which the
    scheduler reads (every test of a group runs on one worker). pytest-xdist 3.8 sets this id itself
    through ``item._nodeid``, which pytest 9.2 no longer reads (a node's id is ``item._id``): there,
    no group held, and every worker set up each module's servers again. With pytest before 9.2
    (no ``_id``), xdist's own hook does it."""
    node_id = getattr(item, "_id", None)
    if node_id is not None and not item.nodeid.endswith(f"@{group}"):
        item._id = type(node_id).parse(f"{item.nodeid}@{group}")


@pytest.fixture
def make_session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    yield make_sessionmaker(engine)
    engine.dispose()


T = TypeVar("T")


@pytest.fixture(scope="session")
def run_root(tmp_path_factory) -> Path:
    """The folder every worker of this run shares: pytest's base folder, or with pytest-xdist
    (``make test`` runs ``-n``) the one that holds each worker's base folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(root: Path, name: str, make: Callable[[Path], T]) -> T:
    """``make(root / name)`` in the first worker that asks, under a file lock; every later caller (in
    any worker) waits for it and gets the same result back (pickled beside it)."""
    folder, result = root / name, root / f"{name}.result.pickle"
    with FileLock(root / f"{name}.lock"):
        if result.exists():
            return pickle.loads(result.read_bytes())
        folder.mkdir(exist_ok=True)
        value = make(folder)
        result.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="session")
def small_catalog(run_root) -> Path:
    """The demo generator at a small size: 4 categories x 8 products x 2 photos (one per run)."""
    from similarity.catalogs.demo import generate_demo_catalog

    return once_per_run(run_root, "catalog", lambda folder: generate_demo_catalog(folder, seed=3, per_category=8))


@pytest.fixture(scope="session")
def feature_cache(_session_home) -> Path:
    """One mask and feature cache for this run: the builds on the small catalog (built_study,
    pg_built_study, tiny_study and those of single tests), evaluations, and the commands the tests
    run with the run's LOOKALIKE_HOME (its cache folder), so each model runs on each photo once."""
    return _session_home / "cache"


@pytest.fixture
def tiny_study(tmp_path, small_catalog, feature_cache):
    """A factory for quick studies on the small catalog (tests.helpers.build_tiny_study: SSIM on raw
    photos, one reference per category), in a new SQLite file unless ``make_session`` is given;
    keyword arguments override any StudyConfig field. Returns (database path or None, session
    factory, StudyInfo)."""
    engines = []

    def make(name: str = "tiny", *, make_session=None, **overrides):
        db_path = None
        if make_session is None:
            db_path = tmp_path / f"{name}.db"
            engines.append(make_engine(f"sqlite:///{db_path}"))
            make_session = make_sessionmaker(engines[-1])
        study = build_tiny_study(make_session, small_catalog, feature_cache, name, **overrides)
        return db_path, make_session, study

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture(scope="session")
def built_study(run_root, small_catalog, feature_cache):
    """A study built with all four default conditions on the small catalog (real weights),
    serving all three protocols (4 trials each + 1 attention check each) and one question; built
    once per run (whatever the number of workers). Tests copy it before they write."""
    from survey.study.build import build_study

    def build(folder: Path):
        db_path = folder / "study.db"
        engine = make_engine(f"sqlite:///{db_path}")
        result = build_study(
            make_sessionmaker(engine), built_study_config(small_catalog), cache_dir=feature_cache, progress=False
        )
        engine.dispose()
        return db_path, result

    return once_per_run(run_root, "built-study", build)


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
def pg_built_study(postgres, built_study, small_catalog, feature_cache):
    """The built study again, in a PostgreSQL template database (features come from the warm cache)."""
    from survey.study.build import build_study

    url = postgres.create_database("template")
    engine = make_engine(url)
    result = build_study(
        make_sessionmaker(engine), built_study_config(small_catalog), cache_dir=feature_cache, progress=False
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
def _session_home(run_root):
    """The run's LOOKALIKE_HOME, shared by its workers (cache files are written atomically)."""
    home = run_root / "lookalike-home"
    home.mkdir(exist_ok=True)
    return home


@pytest.fixture(scope="session", autouse=True)
def _session_env(_session_home):
    """The test environment (tests.helpers.offline_env) for the whole run, so that session- and
    module-scoped fixtures (builds, servers) have it too."""
    with pytest.MonkeyPatch.context() as mp:
        offline_env(mp, _session_home)
        yield


@pytest.fixture(autouse=True)
def _no_network_env(monkeypatch, _session_home):
    # again for each test: a test may change the environment (undone after it)
    offline_env(monkeypatch, _session_home)
