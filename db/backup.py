"""Consistent copies of a live SQLite database, through SQLite's online backup API.

Participants may keep answering while the copy is made: the backup API copies pages in steps
and restarts when a writer changes a page already copied, so the copy is one committed state
of the database (never a torn file, as ``cp`` of a WAL database can be). The copy is written
next to its destination and renamed into place only after ``PRAGMA integrity_check`` passed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from similarity.errors import UserError


class BackupError(UserError, RuntimeError):
    pass


@dataclass(frozen=True)
class BackupResult:
    source: Path
    out: Path
    bytes: int
    seconds: float
    tables: dict[str, int]  # rows per table in the copy


def backup_sqlite(
    db_url: str, out: str | os.PathLike[str], *, overwrite: bool = False, pages_per_step: int = 256
) -> BackupResult:
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"`lookalike backup` copies SQLite files; for {url.get_backend_name()} use the server's "
            f"own tool, e.g. `pg_dump --format=custom --file=study.dump '{url.database}'`"
        )
    source = Path(url.database or "")
    if not source.is_file():
        raise BackupError(f"{source}: no such database file (check --db or $LOOKALIKE_DB)")
    out = Path(out)
    if out.resolve() == source.resolve():
        raise BackupError(f"{out}: the backup must go to another file than the database itself")
    if out.exists() and not overwrite:
        raise BackupError(f"{out} exists; choose a new file name or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    t0 = time.perf_counter()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst, pages=pages_per_step, sleep=0.005)
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy failed SQLite's integrity check ({check}); {source} was not changed")
        tables = {
            name: dst.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
            for (name,) in dst.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        }
    finally:
        dst.close()
        src.close()
    os.replace(partial, out)
    return BackupResult(source, out, out.stat().st_size, time.perf_counter() - t0, tables)
