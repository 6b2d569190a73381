"""Engine and session factory. SQLite by default, with WAL, a busy timeout and foreign keys."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from .migrate import ensure_schema

DEFAULT_DB = "lookalike.db"
BUSY_TIMEOUT_MS = 10_000


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
    """An engine for ``url``; with ``create`` (the default) the schema is created or checked
    (see :func:`db.migrate.ensure_schema`); ``lookalike db upgrade`` passes ``create=False``."""
    url = resolve_db_url(url)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)
    if create:
        ensure_schema(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
