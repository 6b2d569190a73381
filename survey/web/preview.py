"""The researcher's preview: the whole participant flow of a study, on a private copy, writing
nothing to the study's database.

A preview runs the real service (start, comprehension, trials, questions, codes) against an
in-memory SQLite sandbox holding a copy of what a participant's path reads (the study, its
catalog items, conditions, grids, the unblinding map, the unit counts), made when the preview
starts and thrown away with the browser session. The study's database is only read.

Who may preview: ``lookalike serve --preview`` (every visitor of that server previews), or the
admin page's link, which carries a key derived from the admin password, the study and the link's
expiry (:func:`preview_key`), so the link works in a new tab without the password in the URL, and
only until it expires (``admin_idle_minutes`` after the admin page made it). Opening it is a
limited, logged sign-in attempt (survey/web/sign_in.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from db.models import Base, CatalogItem, Condition, Grid, GridCondition, Study, UnitCount

#: The tables a participant's path reads, copied in this order (foreign keys first).
COPIED = (Study, CatalogItem, Condition, Grid, GridCondition, UnitCount)


def preview_key(admin_password: str, study_name: str, expires: int) -> str:
    """The key of the admin page's preview link for ``study_name``, valid until ``expires`` (Unix
    seconds): the expiry, then a MAC of study and expiry under the admin password."""
    mac = hmac.new(admin_password.encode(), f"preview:{study_name}:{expires}".encode(), hashlib.sha256)
    return f"{expires}-{mac.hexdigest()[:32]}"


def key_is_valid(given: str | None, admin_password: str | None, study_name: str, *, now: float | None = None) -> bool:
    """Whether ``given`` is a key :func:`preview_key` made for ``study_name`` that has not expired."""
    if not given or not admin_password:
        return False
    expires, _, _ = given.partition("-")
    if not expires.isdigit() or len(expires) > 12:
        return False
    expected = preview_key(admin_password, study_name, int(expires))
    return hmac.compare_digest(given.encode(), expected.encode()) and int(expires) > (now or time.time())


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
