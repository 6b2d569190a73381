"""How ``lookalike serve`` runs the app: Streamlit's server settings for a study, and N app
processes behind Debian's nginx (WebSocket upgrade, session affinity, timeouts).

One Streamlit process keeps its sessions in its own memory, so more capacity means more
processes behind a proxy that sends each browser's WebSocket to the same process. Nothing a
participant needs lives in a process, though: where they are is in the database and their
token is in the URL, so a participant whose process dies reloads, lands on another process and
resumes. Several processes therefore need a database they can all write at once: PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from similarity.errors import UserError
from survey.web import proxy_security

if TYPE_CHECKING:
    from survey.prolific.periodic import PeriodicSync

APP = Path(__file__).resolve().parent / "app.py"
NGINX = "/usr/sbin/nginx"
#: Streamlit pings each browser this often (seconds); nginx's proxy timeouts are longer, so an
#: idle participant reading instructions is never cut off by the proxy.
PING_INTERVAL_S = 25
PROXY_TIMEOUT_S = 120
ROUTE_COOKIE = "lookalike_route"
#: An app process that dies is restarted, unless it died this often within the window (a crash
#: loop: a broken database URL, a bad study file), when restarting would only hide the cause.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 300

#: Streamlit's server settings for a study (command-line flags of ``streamlit run``).
STREAMLIT_OPTIONS: dict[str, str] = {
    "server.headless": "true",
    # A development file watcher re-checks every imported module after each run (about 40 % of the
    # serving CPU in a profile) and would restart sessions if a file changed mid-study.
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "server.allowRunOnSave": "false",
    # No collection after every script run: measured with bench/served.py (README "Running a study
    # for real"), it cost CPU on every screen and resident memory stayed flat without it, since the
    # participant app holds no torch objects; Python's own generational collector still runs.
    "runner.postScriptGC": "false",
    "runner.magicEnabled": "false",
    # A browser that reconnects within a minute keeps its session; later, a new session resumes
    # from the database (token in the URL), so a short TTL frees abandoned sessions' memory early.
    "server.disconnectedSessionTTL": "60",
    "server.websocketPingInterval": str(PING_INTERVAL_S),
    # errors go to the server's log, never to a participant's screen (tracebacks name tables and code)
    "client.showErrorDetails": "none",
    "client.toolbarMode": "minimal",
    "browser.gatherUsageStats": "false",
    "global.developmentMode": "false",
    "server.maxUploadSize": "1",  # the study uploads nothing
    # the largest WebSocket message either way, in MB (Streamlit's default: 200). A participant sends
    # a few hundred bytes per answer; the admin page's largest is a data grid. A client's larger
    # message is refused by its frame's length, before it is read (close code 1009): measured, five
    # 150 MB messages at once raised an app process's peak resident memory from 264 to 1,002 MB at
    # the default, and not at all at 16 (tests/test_sign_in_served.py sends them).
    "server.maxMessageSize": "16",
}


class ServeError(UserError, RuntimeError):
    """``lookalike serve`` cannot run as asked; the message says what to change."""


def streamlit_command(port: int, address: str) -> list[str]:
    """The command line of one app process."""
    flags = [x for key, value in STREAMLIT_OPTIONS.items() for x in (f"--{key}", value)]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        address,
        *flags,
    ]


def check_app_folder() -> None:
    if (APP.parent / "pages").exists():
        # Streamlit runs the files of any `pages` folder beside the main script as old-style pages
        # (/admin would then crash); a stale one survives a `git pull` that moved the page modules
        raise ServeError(
            f"remove the folder {APP.parent / 'pages'}: Streamlit would serve its files instead of "
            "the app's pages (they live in survey/web/views/)"
        )


def check_processes(processes: int, db_url: str) -> None:
    """More than one process needs a database several processes can write at once."""
    if processes < 1:
        raise ServeError(f"--processes must be at least 1, got {processes}")
    if processes > 1 and not db_url.startswith("postgresql"):
        raise ServeError(
            f"--processes {processes} needs PostgreSQL: several app processes writing one SQLite file "
            f"({db_url}) wait on each other's locks. Give --db postgresql+psycopg://USER@HOST/DB "
            "(README: 'Running a study for real'), or serve with --processes 1"
        )


def find_nginx() -> str:
    found = shutil.which("nginx") or (NGINX if Path(NGINX).exists() else None)
    if found is None:
        raise ServeError("--processes needs nginx in front of the app processes: apt-get install nginx")
    return found


def streamlit_static() -> Path:
    """The folder Streamlit serves ``/static/`` from (its installed front-end bundle)."""
    import streamlit

    return (Path(streamlit.__file__).parent / "static" / "static").resolve()


def nginx_config(run_dir: Path, *, listen: str, backends: list[int], trusted_proxies: tuple[str, ...] = ()) -> str:
    """nginx's configuration for ``backends`` (app ports on 127.0.0.1), listening on ``listen``.

    Affinity: each browser gets a random route cookie on its first response and nginx hashes it
    (consistent hashing) to pick the process; the cookie, not the address, so that a class or an
    office behind one NAT address still spreads over every process. A process that fails is
    skipped (``proxy_next_upstream``) and its participants rehash to the others. Security headers,
    the client address and the limits on the sign-in's paths: :mod:`survey.web.proxy_security`.
    """
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in backends)
    return f"""# generated by `lookalike serve`: {len(backends)} app processes behind nginx
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
{_nginx_logs_and_temp(run_dir)}{_NGINX_MAPS}{proxy_security.limit_zones()}    upstream lookalike {{
        hash $lookalike_route consistent;
{servers}
    }}
    server {{
        listen {listen};
        client_max_body_size 1m;
{proxy_security.real_ip(trusted_proxies)}{_nginx_static_location(streamlit_static())}{_nginx_app_locations()}    }}
}}
"""


def _nginx_logs_and_temp(run_dir: Path) -> str:
    """The http block's access log (which app process served each request) and temp folders, in ``run_dir``."""
    return f"""    # which app process served each request (a WebSocket is logged when it closes)
    log_format lookalike '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                         '$request_time upstream=$upstream_addr';
    access_log {run_dir}/access.log lookalike buffer=64k flush=1s;
    client_body_temp_path {run_dir}/tmp/body;
    proxy_temp_path {run_dir}/tmp/proxy;
    fastcgi_temp_path {run_dir}/tmp/fastcgi;
    uwsgi_temp_path {run_dir}/tmp/uwsgi;
    scgi_temp_path {run_dir}/tmp/scgi;
"""


#: The http block's maps: the WebSocket upgrade, and the route cookie that keeps a browser on one process.
_NGINX_MAPS = f"""    # WebSocket upgrade for Streamlit's /_stcore/stream
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    # session affinity: the browser's route cookie, or a fresh random one on its first request
    map $cookie_{ROUTE_COOKIE} $lookalike_route {{
        ''      $request_id;
        default $cookie_{ROUTE_COOKIE};
    }}
    map $cookie_{ROUTE_COOKIE} $lookalike_set_route {{
        ''      "{ROUTE_COOKIE}=$request_id; Path=/; HttpOnly; SameSite=Lax";
        default '';
    }}
"""


def _nginx_static_location(static: Path) -> str:
    """The server's /static/ location: Streamlit's bundle served by nginx from ``static``."""
    return f"""        # Streamlit's own bundle (hashed file names) straight from the installed package: every new
        # participant loads it once, and nginx serves and compresses it instead of an app process
        location /static/ {{
            alias {static}/;
            # no mime.types is included: a browser runs a module script only with a JavaScript type
            types {{
                application/javascript js mjs;
                text/css css;
                application/json json map;
                image/svg+xml svg;
                image/png png;
                image/gif gif;
                font/woff2 woff2;
                font/woff woff;
            }}
            default_type application/octet-stream;
            expires 30d;
            gzip on;
            gzip_types application/javascript text/css application/json image/svg+xml;
            add_header Set-Cookie $lookalike_set_route;
{proxy_security.security_headers(static.parent / "index.html")}        }}
"""


def _nginx_app_locations() -> str:
    """Everything but /static/ proxied to the app processes, WebSocket included; page loads of /admin
    and new WebSocket sessions limited per client address."""
    proxy = f"""            proxy_pass http://lookalike;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
{proxy_security.client_address_headers()}            proxy_set_header X-Forwarded-Proto $scheme;
            # longer than Streamlit's ping ({PING_INTERVAL_S} s), so only a dead connection times out
            proxy_read_timeout {PROXY_TIMEOUT_S}s;
            proxy_send_timeout {PROXY_TIMEOUT_S}s;
            proxy_next_upstream error timeout http_502 http_503;
            add_header Set-Cookie $lookalike_set_route;
{proxy_security.security_headers(streamlit_static().parent / "index.html")}"""
    return (
        f"        location / {{\n{proxy}        }}\n"
        f"        location ~ ^/admin/?$ {{\n{proxy_security.admin_limit()}{proxy}        }}\n"
        f"        location = /_stcore/stream {{\n{proxy_security.stream_limit()}{proxy}        }}\n"
    )


@dataclass
class Farm:
    """N app processes and nginx in front of them, started and stopped together."""

    port: int
    address: str
    processes: int
    env: Mapping[str, str]
    run_dir: Path
    apps: list[subprocess.Popen]
    nginx: subprocess.Popen | None = None
    backends: tuple[int, ...] = ()

    @classmethod
    def start(
        cls,
        *,
        port: int,
        address: str,
        processes: int,
        env: Mapping[str, str],
        timeout: float = 120,
        trusted_proxies: tuple[str, ...] = (),
    ) -> Farm:
        from db.pgserver import free_port

        nginx_bin = find_nginx()
        run_dir = Path(tempfile.mkdtemp(prefix="lookalike-serve-"))
        run_dir.chmod(0o755)  # as root, nginx's workers run as `nobody` and need its temp folders
        (run_dir / "tmp").mkdir()
        farm = cls(port, address, processes, env, run_dir, [])
        try:
            farm.backends = tuple(free_port() for _ in range(processes))
            for p in farm.backends:
                farm.apps.append(farm._spawn(p))
            for p, proc in zip(farm.backends, farm.apps, strict=True):
                _wait_healthy(f"http://127.0.0.1:{p}/_stcore/health", proc, timeout)
            conf = run_dir / "nginx.conf"
            conf.write_text(
                nginx_config(
                    run_dir, listen=f"{address}:{port}", backends=list(farm.backends), trusted_proxies=trusted_proxies
                )
            )
            cmd = [nginx_bin, "-p", str(run_dir), "-c", str(conf), "-e", str(run_dir / "error.log")]
            check = subprocess.run([*cmd, "-t"], capture_output=True, text=True)
            if check.returncode != 0:
                raise ServeError(f"nginx refused its generated configuration {conf}: {check.stderr.strip()}")
            farm.nginx = subprocess.Popen([*cmd, "-g", "daemon off;"], start_new_session=True)
            _wait_healthy(f"http://{_host(address)}:{port}/_stcore/health", farm.nginx, timeout)
        except BaseException:
            farm.stop()
            raise
        return farm

    def _spawn(self, port: int) -> subprocess.Popen:
        return subprocess.Popen(streamlit_command(port, "127.0.0.1"), env=dict(self.env), start_new_session=True)

    def stop(self) -> None:
        procs = [p for p in (self.nginx, *self.apps) if p is not None]
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def wait(self) -> int:
        """Until nginx exits or a signal stops the farm. An app process that dies is restarted on
        its port (meanwhile nginx sends its participants to the others, who resume from the
        database), unless it died :data:`MAX_RESTARTS` times within :data:`RESTART_WINDOW_S`: then
        it stays down, reported, and the farm runs on the others until none is left."""
        restarts: dict[int, list[float]] = {port: [] for port in self.backends}
        down: set[int] = set()
        while True:
            assert self.nginx is not None
            if self.nginx.poll() is not None:
                print(f"nginx exited ({self.nginx.returncode}); see {self.run_dir}/error.log", flush=True)
                return 1
            for i, (port, proc) in enumerate(zip(self.backends, self.apps, strict=True)):
                if port in down or proc.poll() is None:
                    continue
                now = time.monotonic()
                recent = restarts[port] = [t for t in restarts[port] if now - t < RESTART_WINDOW_S]
                head = f"app process on port {port} exited ({proc.returncode})"
                if len(recent) >= MAX_RESTARTS:
                    down.add(port)
                    print(
                        f"{head}, {len(recent) + 1} times in {RESTART_WINDOW_S // 60} min: not restarting it (see its "
                        f"output above); its participants use the other {len(self.apps) - len(down)} process(es)",
                        flush=True,
                    )
                    continue
                recent.append(now)
                self.apps[i] = self._spawn(port)
                print(
                    f"{head}; restarted it (pid {self.apps[i].pid}); meanwhile its participants move to the "
                    "other process(es) and resume from the database",
                    flush=True,
                )
            if len(down) == len(self.apps):
                return 1
            time.sleep(1)


def _host(address: str) -> str:
    return "127.0.0.1" if address in ("0.0.0.0", "", "*") else address


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if urllib.request.urlopen(url, timeout=2).read() == b"ok":
                return
        except OSError:
            if proc.poll() is not None:
                raise ServeError(f"a process of `lookalike serve` exited ({proc.returncode}) while starting") from None
            if time.monotonic() > deadline:
                raise ServeError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.3)


def run_single(*, port: int, address: str, env: Mapping[str, str], background: PeriodicSync) -> int:
    """One app process as a child, with ``background`` (the Prolific sync) in this process, until
    the child exits, Ctrl+C or SIGTERM. (Without a background job, ``lookalike serve`` replaces
    itself with Streamlit instead.)"""
    check_app_folder()
    app = subprocess.Popen(streamlit_command(port, address), env=dict(env), start_new_session=True)

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"Survey at http://{address}:{port}/  (Ctrl+C stops it)", flush=True)
    background.start()
    try:
        return app.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        background.stop()
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGTERM)
            try:
                app.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(app.pid, signal.SIGKILL)
                app.wait()


def run_farm(
    *,
    port: int,
    address: str,
    processes: int,
    env: Mapping[str, str],
    background: PeriodicSync | None = None,
    trusted_proxies: tuple[str, ...] = (),
) -> int:
    """Run N app processes behind nginx until Ctrl+C or SIGTERM; stop everything on the way out.
    ``background`` (the Prolific sync) runs once, in this process, not in the app processes;
    ``trusted_proxies``: see :func:`survey.web.proxy_security.real_ip`."""
    check_app_folder()
    farm = Farm.start(port=port, address=address, processes=processes, env=env, trusted_proxies=trusted_proxies)

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"Survey at http://{_host(address) if address != 'localhost' else 'localhost'}:{port}/ : nginx in front of "
        f"{processes} app processes (ports {', '.join(map(str, farm.backends))}; config {farm.run_dir}/nginx.conf)",
        flush=True,
    )
    if background is not None:
        background.start()
    try:
        return farm.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if background is not None:
            background.stop()
        farm.stop()


def running_options() -> dict[str, str]:
    """The values of :data:`STREAMLIT_OPTIONS` in the Streamlit process this is called in."""
    from streamlit import config

    def text(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    return {key: text(config.get_option(key)) for key in STREAMLIT_OPTIONS}


def announce_options() -> None:
    """Print, once per app process, the Streamlit settings it really runs with (its log shows them)."""
    options = " ".join(f"{k}={v}" for k, v in running_options().items())
    print(f"lookalike: app process {os.getpid()} runs with {options}", file=sys.stderr, flush=True)
