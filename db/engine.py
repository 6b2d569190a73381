"""Engine and session factory. SQLite by default, with WAL, a busy timeout and foreign keys."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from .models import Base

DEFAULT_DB = "lookalike.db"
BUSY_TIMEOUT_MS = 10_000
#: Bumped whenever the tables change shape. Databases of another version are refused.
SCHEMA_VERSION = 2


class SchemaMismatch(RuntimeError):
    """The database was created by another version of Lookalike."""


def resolve_db_url(value: str | os.PathLike[str] | None = None) -> str:
    """``--db`` value, else ``$LOOKALIKE_DB``, else ``./lookalike.db``; a path becomes a SQLite URL."""
    raw = str(value) if value else os.environ.get("LOOKALIKE_DB") or DEFAULT_DB
    if "://" in raw:
        return raw
    return f"sqlite:///{Path(raw).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str | None = None, *, create: bool = True) -> Engine:
    url = resolve_db_url(url)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if create:
        _create_or_check(engine, url)
    return engine


def _create_or_check(engine: Engine, url: str) -> None:
    tables = set(inspect(engine).get_table_names())
    if "studies" in tables:
        found = 1
        if "lookalike_schema" in tables:
            with engine.connect() as con:
                found = con.execute(text("SELECT version FROM lookalike_schema")).scalar_one()
        if found != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{url}: this database has schema version {found}, this Lookalike needs {SCHEMA_VERSION}. "
                "Rebuild the study into a new database file (in-place upgrades are not supported yet); "
                "answers in the old file stay readable with the version that wrote it")
        return
    Base.metadata.create_all(engine)
    with engine.begin() as con:
        con.execute(text("CREATE TABLE IF NOT EXISTS lookalike_schema (version INTEGER NOT NULL)"))
        con.execute(text("DELETE FROM lookalike_schema"))
        con.execute(text("INSERT INTO lookalike_schema (version) VALUES (:v)"), {"v": SCHEMA_VERSION})


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
