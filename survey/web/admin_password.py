"""The admin password `lookalike serve` accepts: on an address other machines reach, at least
:data:`MIN_ADMIN_PASSWORD` characters, whether it comes from ``LOOKALIKE_ADMIN_PASSWORD`` or from
Streamlit's secrets files; none set is allowed (the admin page is then disabled), with a warning."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

from survey.web.serving import ServeError

#: the shortest admin password `lookalike serve` accepts on an address other machines reach
MIN_ADMIN_PASSWORD = 12


def is_loopback(address: str) -> bool:
    """Whether ``address`` (``--address``) is reachable from this machine only."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name or a wildcard: other machines may reach it


def secrets_password(files: tuple[Path, ...]) -> tuple[str | None, Path | None]:
    """``admin_password`` from Streamlit's secrets files (the later file wins, as in Streamlit)."""
    found: tuple[str | None, Path | None] = (None, None)
    for f in files:
        if f.is_file():
            try:
                value = tomllib.loads(f.read_text(encoding="utf-8")).get("admin_password")
            except tomllib.TOMLDecodeError as e:
                raise ServeError(f"{f}: not valid TOML ({e}); fix or remove the file") from None
            if value:
                found = (str(value), f)
    return found


def check_admin_password(address: str, from_settings: str | None, secrets_files: tuple[Path, ...]) -> str | None:
    """On an address other machines reach, refuse an admin password shorter than
    :data:`MIN_ADMIN_PASSWORD`; returns a warning when none is set (the admin page is then disabled)."""
    if is_loopback(address):
        return None
    password, source = (from_settings, None) if from_settings else secrets_password(secrets_files)
    where = f"admin_password in {source}" if source else "LOOKALIKE_ADMIN_PASSWORD"
    if password is None:
        return (
            f"warning: no admin password is set, so /admin is disabled; set LOOKALIKE_ADMIN_PASSWORD (at least "
            f"{MIN_ADMIN_PASSWORD} characters) or admin_password in .streamlit/secrets.toml to use it"
        )
    if len(password) < MIN_ADMIN_PASSWORD:
        raise ServeError(
            f"{where} has {len(password)} characters; serving on {address} (reachable from other machines) "
            f"needs an admin password of at least {MIN_ADMIN_PASSWORD}: set a longer one, or serve on localhost"
        )
    return None
