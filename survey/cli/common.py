"""What the command modules share: the ``--db`` flag, opening the database, and the executor flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from similarity.execution.executors import EXECUTORS
from survey.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from similarity.execution.protocol import Executor

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


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    """``--executor``, ``--ray-address``, ``--workers``: where a command's models run."""
    p.add_argument("--executor", choices=list(EXECUTORS), default="local", help="where the models run")
    p.add_argument("--ray-address", help="a running Ray cluster (default: start a local one)")
    p.add_argument("--workers", type=int, help="ray: actors per model (default: one per CPU or GPU); local: threads")


def executor_from_flags(args: argparse.Namespace) -> Executor:
    from similarity.execution.executors import create_executor

    return create_executor(args.executor, address=args.ray_address, workers=args.workers)
