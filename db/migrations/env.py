"""Alembic environment. Lookalike runs migrations through ``db.migrate`` (``lookalike db upgrade``),
which hands over an open connection; ``alembic`` on the command line works too, given
``-x url=...``."""

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Connection, create_engine

from db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if url is None:
        raise CommandError(
            "no database to migrate: run `alembic -x url=sqlite:///path/to/study.db upgrade head` "
            "(or use `lookalike db upgrade --db URL`)"
        )
    with create_engine(url).connect() as con:
        _run(con)
