"""What the command modules share: the ``--db`` flag and opening the database."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from survey.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

#: What ``add_subparsers()`` returns; each command module adds its commands to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: A command's handler: the parsed flags and the process's settings in, the exit status out.
Handler: TypeAlias = Callable[[argparse.Namespace, Settings], int]


def add_db_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database file path or SQLAlchemy URL (default: $LOOKALIKE_DB or ./lookalike.db)")


def open_db(settings: Settings, *, must_exist: bool = False) -> sessionmaker[Session]:
    """The session factory for ``settings.db_url``. ``must_exist``: the command needs a built
    study, so a SQLite file that does not exist is refused (:class:`db.engine.DatabaseMissing`)
    rather than created empty."""
    from db.engine import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(settings.db_url, must_exist=must_exist))
