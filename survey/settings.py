"""Settings read once from the environment (app.py, the CLI) and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from db.engine import resolve_db_url


@dataclass(frozen=True)
class Settings:
    db_url: str
    study: str | None  # which study to serve; None = the most recently built
    home: Path  # generated files: demo catalog, mask and feature caches

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @classmethod
    def from_env(cls, db: str | None = None) -> "Settings":
        """``$LOOKALIKE_DB`` (or ``db``), ``$LOOKALIKE_STUDY``, ``$LOOKALIKE_HOME`` (default ~/.cache/lookalike)."""
        home = os.environ.get("LOOKALIKE_HOME") or Path.home() / ".cache" / "lookalike"
        return cls(db_url=resolve_db_url(db or os.environ.get("LOOKALIKE_DB")),
                   study=os.environ.get("LOOKALIKE_STUDY") or None, home=Path(home).expanduser())
