"""The database itself: ``db current / upgrade`` and ``backup``."""

from __future__ import annotations

import argparse

from survey.cli.common import Subparsers, add_db_flag
from survey.settings import Settings


def register(sub: Subparsers) -> None:
    add_db(sub)
    add_backup(sub)


# --- db current / upgrade -----------------------------------------------------------------


def add_db(sub: Subparsers) -> None:
    p = sub.add_parser("db", help="show the database's schema revision, or upgrade it in place (Alembic)")
    p.add_argument("action", choices=["upgrade", "current"])
    add_db_flag(p)
    p.set_defaults(func=cmd_db)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from db import migrate
    from db.engine import make_engine

    url = settings.db_url
    # `current` only reads: a file that does not exist is refused, not created empty
    engine = make_engine(url, create=False, must_exist=args.action == "current")
    try:
        if args.action == "upgrade":
            before, after = migrate.upgrade(engine)
            print(
                f"{url}: schema {before or 'empty'} -> {after}"
                if before != after
                else f"{url}: already at the newest schema ({after})"
            )
        else:
            state = migrate.schema_state(engine)
            found = "empty" if state.empty else (state.current or f"pre-migration version {state.legacy_version}")
            print(
                f"{url}: schema {found}; this Lookalike needs {state.head}"
                + ("" if state.up_to_date or state.empty else " (run `lookalike db upgrade`)")
            )
    finally:
        engine.dispose()
    return 0


# --- backup -------------------------------------------------------------------------------


def add_backup(sub: Subparsers) -> None:
    p = sub.add_parser("backup", help="consistent copy of a live SQLite database (online backup API)")
    p.add_argument("out", help="file to write the copy to")
    add_db_flag(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=cmd_backup)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from db.backup import backup_sqlite

    r = backup_sqlite(settings.db_url, args.out, overwrite=args.overwrite)
    rows = ", ".join(f"{t} {n}" for t, n in r.tables.items() if t in ("participants", "responses", "trials"))
    print(f"backed up {r.source} -> {r.out} ({r.bytes / 1e6:.1f} MB, {r.seconds:.2f}s, integrity ok; {rows})")
    return 0
