"""The app's settings: read once from the environment in app.py and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass

from db.engine import resolve_db_url


@dataclass(frozen=True)
class Settings:
    db_url: str
    study: str | None  # which study to serve; None = the most recently built

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(db_url=resolve_db_url(os.environ.get("LOOKALIKE_DB")),
                   study=os.environ.get("LOOKALIKE_STUDY") or None)
