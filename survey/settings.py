"""The one place that reads the environment: :class:`Settings`, built at the top of each entry
point (the command line's ``main``, once per command; the Streamlit app's ``main``) and passed
down. No other module reads ``os.environ``; ``lookalike serve`` hands its settings to the
Streamlit process with :meth:`Settings.to_env`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from db.engine import resolve_db_url
from similarity.errors import UserError

#: Environment variable -> what it sets.
ENV_DB, ENV_STUDY, ENV_HOME = "LOOKALIKE_DB", "LOOKALIKE_STUDY", "LOOKALIKE_HOME"
ENV_OFFLINE, ENV_ADMIN_PASSWORD = "LOOKALIKE_OFFLINE", "LOOKALIKE_ADMIN_PASSWORD"
ENV_PREVIEW = "LOOKALIKE_PREVIEW"
#: Prolific's API token: read from the environment only, never written to a file, a log or a child
#: process's environment (:meth:`Settings.to_env` leaves it out); and where the API is (tests: a fake)
ENV_PROLIFIC_TOKEN, ENV_PROLIFIC_API = "PROLIFIC_TOKEN", "LOOKALIKE_PROLIFIC_API"
PROLIFIC_API = "https://api.prolific.com/api/v1/"
ENV_BEHIND_PROXY, ENV_TRUSTED_PROXIES = "LOOKALIKE_BEHIND_PROXY", "LOOKALIKE_TRUSTED_PROXIES"


class SettingsError(UserError, ValueError):
    """An environment variable holds a value Lookalike cannot use; the message names it and the fix."""


@dataclass(frozen=True)
class SignInSettings:
    """How the admin sign-in (the /admin page and its preview link) resists guessing and expires.

    Attempts are counted per browser session and per client address, in the database (every app
    process sees every attempt): the first ``free_attempts`` failures cost nothing, each further one
    doubles the wait (``backoff_s``, 2x, 4x, ...), and ``lockout_after`` failures lock that
    session and address out for ``lockout_minutes``; a quiet ``lockout_minutes`` or a success starts
    the count afresh (survey/study/sign_ins.py). Each is read from ``LOOKALIKE_<NAME>``, upper case
    (e.g. ``LOOKALIKE_SIGN_IN_LOCKOUT_MINUTES``).
    """

    admin_idle_minutes: float = 30.0  # a signed-in admin session without any action this long is signed out
    sign_in_free_attempts: int = 3
    sign_in_backoff_s: float = 1.0
    sign_in_lockout_after: int = 10
    sign_in_lockout_minutes: float = 15.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            low = 1 if f.name == "sign_in_lockout_after" else 0
            if not value >= low or value != value:  # also NaN
                raise SettingsError(f"{env_name(f.name)} must be at least {low}, got {value}")
        if self.sign_in_lockout_after <= self.sign_in_free_attempts:
            raise SettingsError(
                f"{env_name('sign_in_lockout_after')} ({self.sign_in_lockout_after}) must be larger than "
                f"{env_name('sign_in_free_attempts')} ({self.sign_in_free_attempts})"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SignInSettings:
        values: dict[str, float | int] = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name), "").strip()
            if not raw:
                continue
            kind = int if f.type == "int" else float
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise SettingsError(
                    f"{env_name(f.name)}={raw!r} is not {'a whole' if kind is int else 'a'} number; "
                    f"unset it for the default ({f.default})"
                ) from None
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        return {env_name(f.name): str(getattr(self, f.name)) for f in fields(self)}


def parse_trusted_proxies(raw: str) -> tuple[str, ...]:
    """``LOOKALIKE_TRUSTED_PROXIES``: comma-separated addresses or networks, each checked."""
    out = []
    for part in (p.strip() for p in raw.split(",")):
        if part:
            try:
                out.append(str(ipaddress.ip_network(part, strict=False)))
            except ValueError:
                raise SettingsError(
                    f"{ENV_TRUSTED_PROXIES}: {part!r} is not an address or network (e.g. 127.0.0.1 or 10.0.0.0/8)"
                ) from None
    return tuple(out)


def env_name(field_name: str) -> str:
    """The environment variable of a :class:`SignInSettings` field."""
    return f"LOOKALIKE_{field_name.upper()}"


#: the secret the project's browser tests carry (tests/served.py): their participants are not flagged as bots
ENV_BROWSER_TEST_MARK = "LOOKALIKE_BROWSER_TEST_MARK"


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
    sign_in: SignInSettings = field(default_factory=SignInSettings)
    # True only in the app processes `lookalike serve --processes N` starts behind its own nginx: the
    # client's address is then the X-Real-IP header that nginx sets (survey/web/sign_in.py)
    behind_proxy: bool = False
    # proxies of your own in front of that nginx (an HTTPS front end), whose X-Forwarded-For it trusts
    trusted_proxies: tuple[str, ...] = ()
    #: a browser whose User-Agent ends in "LookalikeTest/<this>" is the project's own test (never set it in a study)
    browser_test_mark: str | None = None

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
        ``offline``), ``$LOOKALIKE_ADMIN_PASSWORD``, ``$PROLIFIC_TOKEN``, ``$LOOKALIKE_PROLIFIC_API``,
        the sign-in's :class:`SignInSettings`, ``$LOOKALIKE_BEHIND_PROXY`` (set by ``lookalike serve``
        for its app processes), ``$LOOKALIKE_TRUSTED_PROXIES``. Arguments are command-line flags: they
        win over the environment. ``environ`` defaults to ``os.environ``."""
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
            sign_in=SignInSettings.from_env(env),
            behind_proxy=env.get(ENV_BEHIND_PROXY, "") not in ("", "0"),
            trusted_proxies=parse_trusted_proxies(env.get(ENV_TRUSTED_PROXIES, "")),
            browser_test_mark=env.get(ENV_BROWSER_TEST_MARK) or None,
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
        if self.behind_proxy:
            env[ENV_BEHIND_PROXY] = "1"
        if self.trusted_proxies:
            env[ENV_TRUSTED_PROXIES] = ",".join(self.trusted_proxies)
        if self.browser_test_mark:
            env[ENV_BROWSER_TEST_MARK] = self.browser_test_mark
        return env | self.sign_in.to_env()
