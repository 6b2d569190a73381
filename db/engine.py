"""Engine and session factory. SQLite by default, with WAL, a busy timeout and foreign keys."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from db.migrate import ensure_schema
from similarity.errors import UserError

DEFAULT_DB = "lookalike.db"
BUSY_TIMEOUT_MS = 10_000


class DatabaseMissing(UserError):
    """A command that reads an existing database was given a SQLite file that does not exist."""


def resolve_db_url(value: str | os.PathLike[str] | None = None) -> str:
    """A database path or URL (``--db``, ``$LOOKALIKE_DB`` via :class:`survey.settings.Settings`),
    else ``./lookalike.db``; a path becomes a SQLite URL."""
    raw = str(value) if value else DEFAULT_DB
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


def _sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL; None for an in-memory database."""
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def make_engine(url: str | None = None, *, create: bool = True, must_exist: bool = False) -> Engine:
    """An engine for ``url``; with ``create`` (the default) the schema is created or checked
    (see :func:`db.migrate.ensure_schema`); ``lookalike db upgrade`` passes ``create=False``.
    With ``must_exist``, a SQLite file that does not exist raises :class:`DatabaseMissing`
    and nothing is created (commands that only read a built study)."""
    url = resolve_db_url(url)
    if url.startswith("sqlite"):
        path = _sqlite_file(url)
        if must_exist and path is not None and not path.is_file():
            raise DatabaseMissing(
                f"database {path} does not exist; check --db (or $LOOKALIKE_DB), "
                "or build a study first with `lookalike build`"
            )
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)
    if create:
        ensure_schema(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
