"""A throwaway PostgreSQL server for tests and benchmarks (never for studies).

It runs Debian's (or any) PostgreSQL binaries from ``$PATH`` or ``/usr/lib/postgresql/*/bin``
on a free localhost port, with its data in a temporary directory, ``fsync`` off and trust
authentication; :meth:`TempPostgres.stop` removes everything. As root, the server runs as the
``postgres`` system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or ``None``."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TempPostgres:
    bindir: Path
    root: Path
    port: int
    user: str | None  # system user the server runs as (None: the current user)

    @classmethod
    def start(cls, bindir: Path | None = None) -> TempPostgres:
        bindir = bindir or find_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) were not found; "
                "install them with `apt-get install postgresql`"
            )
        user = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as e:
                raise PostgresUnavailable("running as root needs a 'postgres' system user to own the server") from e
            user = "postgres"
        root = Path(tempfile.mkdtemp(prefix="lookalike-pg-"))
        if user:
            pw = pwd.getpwnam(user)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        server = cls(bindir, root, free_port(), user)
        server._run("initdb", "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        server.resume()
        return server

    def resume(self) -> None:
        """Start the server (again, after :meth:`halt`) on the same port with the same data."""
        # fsync off: the machine does not crash in a test; commits still reach the OS before they
        # return (synchronous_commit stays on), so a killed server loses no committed answer
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=300"
        )
        self._run(
            "pg_ctl", "-D", str(self.root / "data"), "-o", opts, "-l", str(self.root / "log"), "-w", "-t", "60", "start"
        )

    def halt(self) -> None:
        """Stop the server abruptly (as a crash would), keeping its data for :meth:`resume`."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "lookalike", template: str | None = None) -> str:
        """A fresh database (empty, or a copy of ``template``); returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and delete everything it stored."""
        try:
            self.halt()
        finally:
            shutil.rmtree(self.root)
