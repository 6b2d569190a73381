"""Schema migrations (Alembic, scripts in ``db/migrations``) and the start-up schema check.

``make_engine`` calls :func:`ensure_schema`: an empty database gets the current tables and is
stamped at the newest revision; a database at the newest revision is used as it is; an older
one is refused with the command that upgrades it (``lookalike db upgrade``); one written by a
newer Lookalike (a revision this version does not know) is refused outright.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from db.models import Base
from similarity.errors import UserError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The pre-Alembic ``lookalike_schema`` version that revision 0001 reproduces.
LEGACY_VERSION, LEGACY_REVISION = 2, "0001"


class SchemaError(UserError, RuntimeError):
    """The database's schema is not the one this Lookalike needs."""


class SchemaOutdated(SchemaError):
    pass


class SchemaTooNew(SchemaError):
    pass


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # Alembic revision; None for an empty or pre-Alembic database
    head: str
    legacy_version: int | None  # pre-Alembic databases: their lookalike_schema version
    empty: bool

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise SchemaError(
            f"no migration scripts in {MIGRATIONS / 'versions'}: this Lookalike installation is "
            "incomplete; reinstall it"
        )
    return head


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as con:
        tables = set(inspect(con).get_table_names())
        current = MigrationContext.configure(con).get_current_revision()
        legacy = None
        if current is None and "studies" in tables:
            legacy = (
                con.execute(text("SELECT version FROM lookalike_schema")).scalar_one()
                if "lookalike_schema" in tables
                else 1
            )
    return SchemaState(current, head_revision(), legacy, empty=not (tables - {"alembic_version"}))


def ensure_schema(engine: Engine) -> SchemaState:
    """Create the tables of an empty database, accept an up-to-date one, refuse anything else."""
    state = schema_state(engine)
    url = engine.url.render_as_string(hide_password=True)
    if state.empty:
        with engine.begin() as con:
            Base.metadata.create_all(con)
            command.stamp(_config(con), "head")
        return schema_state(engine)
    if state.up_to_date:
        return state
    known = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
    if state.current is not None and state.current not in known:
        raise SchemaTooNew(
            f"{url}: the database is at schema revision {state.current}, written by a newer "
            f"Lookalike (this one knows up to {state.head}). Upgrade Lookalike; nothing was changed"
        )
    found = f"revision {state.current}" if state.current else f"pre-migration schema version {state.legacy_version}"
    raise SchemaOutdated(
        f"{url}: the database has {found}, this Lookalike needs revision {state.head}. "
        f"Back it up (`lookalike backup`), then run `lookalike db upgrade --db {url}`"
    )


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade in place (one transaction where the database allows); returns (from, to)."""
    state = schema_state(engine)
    if state.empty:
        ensure_schema(engine)
        return None, head_revision()
    if state.current is None and state.legacy_version != LEGACY_VERSION:
        raise SchemaError(
            f"pre-migration schema version {state.legacy_version} cannot be upgraded in place; "
            f"only version {LEGACY_VERSION} (Lookalike 0.1) can. Export its answers with "
            "the Lookalike that wrote it and rebuild the study"
        )
    with engine.begin() as con:
        if state.current is None:
            command.stamp(_config(con), LEGACY_REVISION)
        command.upgrade(_config(con), revision)
    after = schema_state(engine).current
    if after is None:
        raise SchemaError(
            f"upgrading {engine.url.render_as_string(hide_password=True)} to {revision!r} left no "
            "schema revision stamped; give a revision to upgrade to, e.g. 'head'"
        )
    return state.current or f"legacy v{state.legacy_version}", after
