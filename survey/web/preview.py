"""The researcher's preview: the whole participant flow of a study, on a private copy, writing
nothing to the study's database.

A preview runs the real service (start, comprehension, trials, questions, codes) against an
in-memory SQLite sandbox holding a copy of what a participant's path reads (the study, its
catalog items, conditions, grids, the unblinding map, the unit counts), made when the preview
starts and thrown away with the browser session. The study's database is only read.

Who may preview: ``lookalike serve --preview`` (every visitor of that server previews), or the
admin page's link, which carries a key derived from the admin password and the study
(:func:`preview_key`), so the link works in a new tab without the password in the URL.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from db.models import Base, CatalogItem, Condition, Grid, GridCondition, Study, UnitCount

#: The tables a participant's path reads, copied in this order (foreign keys first).
COPIED = (Study, CatalogItem, Condition, Grid, GridCondition, UnitCount)


def preview_key(admin_password: str, study_name: str) -> str:
    """The key of the admin page's preview link for ``study_name``."""
    return hmac.new(admin_password.encode(), f"preview:{study_name}".encode(), hashlib.sha256).hexdigest()[:32]


def key_is_valid(given: str | None, admin_password: str | None, study_name: str) -> bool:
    if not given or not admin_password:
        return False
    return hmac.compare_digest(given.encode(), preview_key(admin_password, study_name).encode())


def sandbox(make_session: sessionmaker[Session], study_id: int) -> sessionmaker[Session]:
    """A session factory on a new in-memory database holding a copy of the study's rows that a
    participant's path reads; the study is opened there even if it is closed for real."""
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    copy = sessionmaker(engine, expire_on_commit=False)
    with make_session() as s, copy.begin() as c:
        for model in COPIED:
            table = Base.metadata.tables[model.__tablename__]
            study_col = table.c.id if model is Study else table.c.get("study_id")
            if model is GridCondition:
                q = select(table).join(Grid, Grid.id == table.c.grid_id).where(Grid.study_id == study_id)
            elif study_col is not None:
                q = select(table).where(study_col == study_id)
            else:
                raise RuntimeError(f"{model.__tablename__}: no way to select the rows of one study")
            rows = [dict(r._mapping) for r in s.execute(q)]
            if rows:
                c.execute(table.insert(), rows)
        c.execute(Base.metadata.tables[Study.__tablename__].update().values(status="open"))
    return copy
