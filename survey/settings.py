"""The one place that reads the environment: :class:`Settings`, built at the top of each entry
point (the command line's ``main``, once per command; the Streamlit app's ``main``) and passed
down. No other module reads ``os.environ``; ``lookalike serve`` hands its settings to the
Streamlit process with :meth:`Settings.to_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from db.engine import resolve_db_url

#: Environment variable -> what it sets.
ENV_DB, ENV_STUDY, ENV_HOME = "LOOKALIKE_DB", "LOOKALIKE_STUDY", "LOOKALIKE_HOME"
ENV_OFFLINE, ENV_ADMIN_PASSWORD = "LOOKALIKE_OFFLINE", "LOOKALIKE_ADMIN_PASSWORD"
ENV_PREVIEW = "LOOKALIKE_PREVIEW"
#: Prolific's API token: read from the environment only, never written to a file, a log or a child
#: process's environment (:meth:`Settings.to_env` leaves it out); and where the API is (tests: a fake)
ENV_PROLIFIC_TOKEN, ENV_PROLIFIC_API = "PROLIFIC_TOKEN", "LOOKALIKE_PROLIFIC_API"
PROLIFIC_API = "https://api.prolific.com/api/v1/"


@dataclass(frozen=True)
class Settings:
    db_url: str
    study: str | None  # which study to serve; None = the most recently built
    home: Path  # generated files: demo catalog, mask and feature caches
    offline: bool = False  # True: never download weights; missing ones are an error
    admin_password: str | None = None  # the /admin page's password (else Streamlit secrets; none: disabled)
    preview: bool = False  # serve the participant flow as a preview that writes nothing (survey/web/preview.py)
    prolific_token: str | None = field(default=None, repr=False)  # $PROLIFIC_TOKEN; never printed or passed on
    prolific_api: str = PROLIFIC_API  # the Prolific API's base URL ($LOOKALIKE_PROLIFIC_API: tests' fake server)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def image_store(self) -> Path:
        """Images fetched from product-feed URLs, by content hash, with a status per URL (similarity.catalogs.fetch)."""
        return self.home / "images"

    @property
    def media_dir(self) -> Path:
        """Thumbnails the participant page shows, by content hash (survey/study/media.py)."""
        return self.home / "media"

    @classmethod
    def from_env(
        cls,
        db: str | None = None,
        *,
        offline: bool = False,
        study: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """``$LOOKALIKE_DB`` (or ``db``), ``$LOOKALIKE_STUDY`` (or ``study``), ``$LOOKALIKE_HOME``
        (default ~/.cache/lookalike), ``$LOOKALIKE_OFFLINE`` (any value but empty or 0; or
        ``offline``), ``$LOOKALIKE_ADMIN_PASSWORD``, ``$PROLIFIC_TOKEN``,
        ``$LOOKALIKE_PROLIFIC_API``. Arguments are command-line flags: they win
        over the environment. ``environ`` defaults to ``os.environ``."""
        env = os.environ if environ is None else environ
        home = env.get(ENV_HOME) or Path.home() / ".cache" / "lookalike"
        return cls(
            db_url=resolve_db_url(db or env.get(ENV_DB)),
            study=study or env.get(ENV_STUDY) or None,
            home=Path(home).expanduser(),
            offline=offline or env.get(ENV_OFFLINE, "") not in ("", "0"),
            admin_password=env.get(ENV_ADMIN_PASSWORD) or None,
            preview=env.get(ENV_PREVIEW, "") not in ("", "0"),
            prolific_token=env.get(ENV_PROLIFIC_TOKEN, "").strip() or None,
            prolific_api=env.get(ENV_PROLIFIC_API) or PROLIFIC_API,
        )

    def to_env(self) -> dict[str, str]:
        """These settings as the environment variables :meth:`from_env` reads (for a child process);
        never the Prolific token: the app processes do not call Prolific (the sync runs in ``serve``'s
        own process)."""
        env = {ENV_DB: self.db_url, ENV_HOME: str(self.home), ENV_OFFLINE: "1" if self.offline else "0"}
        if self.study:
            env[ENV_STUDY] = self.study
        if self.admin_password:
            env[ENV_ADMIN_PASSWORD] = self.admin_password
        if self.preview:
            env[ENV_PREVIEW] = "1"
        if self.prolific_api != PROLIFIC_API:
            env[ENV_PROLIFIC_API] = self.prolific_api
        return env
