from __future__ import annotations

import os
from pathlib import Path

import pytest

from db.engine import make_engine, make_sessionmaker

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(sub: str) -> Path:
    """Real photos in ../shared/data (never copied into the repo)."""
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read real photos from ../shared/data beside the checkout")
    return path


#: The demo study's four conditions (method/segmenter), for simulated designs.
CONDITIONS = ["efficientnet/none", "efficientnet/u2netp", "ssim/none", "ssim/u2netp"]


def expected_rating(effect: float, model) -> float:
    """E[rating] under the simulate response model: latent + bias ~ N(effect, noise^2 + bias^2), rating =
    round(4 + 1.5 x) clipped to 1..7, so P(rating <= k) = Phi(((k + 0.5 - 4) / 1.5 - effect) / s)."""
    import numpy as np
    from scipy import stats

    s = np.hypot(model.noise_sd, model.bias_sd)
    cdf = stats.norm.cdf(((np.arange(1, 7) + 0.5 - 4) / 1.5 - effect) / s)
    return float(7 - cdf.sum())


def synthetic_design(
    conditions: list[str],
    references: int,
    trials_per_participant: int,
    protocols: tuple[str, ...] = ("rating", "pairwise", "ranking"),
):
    """A simulation design without a database: every condition its own grid for each of ``references``
    references (no shared grids), no attention checks."""
    import pandas as pd

    from survey.analysis.simulate import Design

    rows = [
        {
            "grid": f"g{r}-{i}",
            "reference": f"r{r}",
            "method": c.split("/")[0],
            "segmenter": c.split("/", 1)[1] if "/" in c else "",
            "condition": c,
        }
        for r in range(references)
        for i, c in enumerate(conditions)
    ]
    return Design(pd.DataFrame(rows), trials_per_participant, protocols)


def answer_all(make_session, token: str, rng, *, fail_checks: bool = False, finish: bool = True) -> None:
    """Answer every trial of a consented participant through the service (any protocol), then,
    with ``finish``, the closing questions (left unanswered)."""
    from survey.participants import service

    service.finish_instructions(make_session, token)
    while (st := service.participant_state(make_session, token)).stage == "trial":
        t = st.trial
        service.mark_shown(make_session, token, t.trial_id)
        if t.protocol == "rating":
            service.submit_rating(make_session, token, t.trial_id, 7 if fail_checks else int(rng.integers(1, 8)))
        elif t.protocol == "pairwise":
            service.submit_pairwise(make_session, token, t.trial_id, str(rng.choice(["left", "right", "tie"])))
        else:
            service.submit_ranking(make_session, token, t.trial_id, 0, len(t.grids) - 1)
    if finish and st.stage == "questions":
        service.submit_questions(make_session, token, {}, None)


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


def _built_study_config(small_catalog):
    from survey.study.config import Question, StudyConfig

    return StudyConfig(
        name="t",
        catalog=str(small_catalog),
        references_per_category=2,
        reference_filter={"view": "packshot"},
        seed=1,
        protocols=("rating", "pairwise", "ranking"),
        trials_per_participant=4,
        rating_item_ticks=True,
        attention_check_rate=0.25,
        completion_code="DONE42",
        redirect_url="https://example.org/complete?cc=DONE42",
        demographics=(Question("age", "Your age group", ("18-29", "30-49", "50+")),),
    )


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
        sessions, _built_study_config(small_catalog), cache_dir=db_path.parent / "cache", progress=False
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
        _built_study_config(small_catalog),
        cache_dir=db_path.parent / "cache",
        progress=False,
    )
    engine.dispose()
    return url.rsplit("/", 1)[1], result


def _sqlite_copy(built_study, tmp_path) -> str:
    import sqlite3

    src_path, _ = built_study
    dst_path = tmp_path / "copy.db"
    src, dst = sqlite3.connect(src_path), sqlite3.connect(dst_path)
    src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{dst_path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def study_db(request, tmp_path, built_study):
    """A private copy of the built study, in SQLite and in PostgreSQL, so tests can answer freely.
    Yields (database URL, session factory, build result)."""
    if request.param == "sqlite":
        url, result = _sqlite_copy(built_study, tmp_path), built_study[1]
    else:
        template, result = request.getfixturevalue("pg_built_study")
        url = request.getfixturevalue("postgres").create_database(template=template)
    engine = make_engine(url)
    yield url, make_sessionmaker(engine), result
    engine.dispose()


@pytest.fixture
def sqlite_study_db(tmp_path, built_study):
    """``study_db``, SQLite only (for what only SQLite has, e.g. file backups)."""
    url = _sqlite_copy(built_study, tmp_path)
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
