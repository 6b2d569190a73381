"""The real app under load: N concurrent participants against `lookalike serve` (one process, or
several behind nginx on PostgreSQL), talking HTTP and WebSocket as a browser does.

Each participant (bench/_stclient.py, one asyncio loop for all of them) loads the page with the
recruitment parameters, consents, takes a whole study (rating, pairwise and best-worst screens,
every image fetched over HTTP) with an exponential think time per screen, and answers the
closing questions. Participants arrive spread over ``--ramp-s`` seconds. Afterwards the database
is counted: every trial answered exactly once.

``--browsers K`` adds the cross-check: K light participants, then K real Chromium pages
(Debian's, through Playwright), one after the other on the same server; the two latency
summaries should agree.

Prints one JSON object last: participants, think_s, processes, database, answers
expected/stored/lost/duplicates/errors, submit -> next screen p50/p95/max, first page p95,
server CPU-seconds per answer, resident memory per app process before and after, the clients'
CPU share (and the browser cross-check with ``--browsers``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import emit
from bench._stclient import Participant
from survey.protocols import GRID_PROTOCOLS, NAMES

TICK = os.sysconf("SC_CLK_TCK")


def build_bench_study(url: str, home: Path, trials: int, protocols: tuple[str, ...] = GRID_PROTOCOLS) -> None:
    """The demo catalog (4 categories x 8 products), 4 conditions, ``protocols`` (default: the three grid
    protocols; swipe: one round per category, at most ``trials``)."""
    from db.engine import make_engine, make_sessionmaker
    from similarity.catalogs.demo import generate_demo_catalog
    from survey.study.build import build_study
    from survey.study.config import Component, StudyConfig

    catalog = generate_demo_catalog(home / "catalog", seed=5, per_category=8)
    engine = make_engine(url)
    config = StudyConfig(
        name="bench",
        catalog=str(catalog),
        methods=(Component("ssim"), Component("efficientnet")),
        segmenters=(Component("none"), Component("u2netp")),
        references_per_category=3,
        reference_filter={"view": "packshot"},
        protocols=protocols,
        trials_per_participant=trials,
        attention_check_rate=0.2,
        seed=5,
    )
    build_study(make_sessionmaker(engine), config, cache_dir=home / "cache", progress=False, media_dir=home / "media")
    engine.dispose()


# --- the server's processes -------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for c in children:
            out += _tree(int(c))
    return out


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _is_app(pid: int) -> bool:
    return b"streamlit" in Path(f"/proc/{pid}/cmdline").read_bytes()


def server_snapshot(root: int) -> dict:
    pids = _tree(root)
    return {
        "cpu_s": sum(_cpu_s(p) for p in pids),
        "rss_mb": {p: round(_rss_mb(p), 1) for p in pids if _is_app(p)},
    }


def start_server(db_url: str, port: int, processes: int, env: dict[str, str], options: list[str], log: Path):
    from survey.web import serving

    if options:  # one app process with changed Streamlit options (e.g. runner.postScriptGC=true)
        cmd = serving.streamlit_command(port, "localhost")
        for opt in options:
            key, value = opt.split("=", 1)
            cmd += [f"--{key}", value]
    else:
        cmd = [sys.executable, "-m", "survey.cli", "serve", "--db", db_url, "--port", str(port)]
        cmd += ["--processes", str(processes)]
    with log.open("ab") as out:  # the server's log: errors are logged there, never shown
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while True:
        try:
            if urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not come up on port {port}") from None
            time.sleep(0.5)
    time.sleep(1.0 if processes == 1 else 3.0)  # every app process up (nginx answers as soon as one is)
    return proc


# --- participants -----------------------------------------------------------------------------


async def _crowd(base: str, n: int, think_s: float, ramp_s: float, seed: int, tag: str) -> list:
    rng = random.Random(seed)
    people = [Participant(base, f"{tag}-{i}", think_s, random.Random(rng.random())) for i in range(n)]
    errors: list[str] = []

    async def one(p: Participant, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await p.run()
        except Exception as e:  # counted and reported: the benchmark's point is that there are none
            errors.append(f"{p.pid}: {type(e).__name__}: {e}")

    await asyncio.gather(*(one(p, rng.uniform(0, ramp_s)) for p in people))
    return [people, errors]


async def _all(people: list[Participant]) -> None:
    await asyncio.gather(*(p.run() for p in people))


def run_light(base: str, n: int, think_s: float, ramp_s: float, seed: int, tag: str):
    return asyncio.run(_crowd(base, n, think_s, ramp_s, seed, tag))


#: in the page: when the participant last clicked (the Submit button, on a trial screen)
CLICK_CLOCK = "document.addEventListener('click', () => { window.__lookalikeClick = performance.now(); }, true);"


def run_browsers(base: str, n: int, think_s: float, seed: int) -> tuple[list[float], list[float]]:
    """``n`` Chromium pages, one after the other. Per trial answer, in seconds: from Playwright's
    click call to the next screen settled (images loaded), and the same measured in the page from
    the click event, without Playwright's checks before it clicks."""
    from playwright.sync_api import sync_playwright

    from tests.served import advance, launch, screen_number, start

    rng = random.Random(seed)
    lat: list[float] = []
    in_page: list[float] = []
    with sync_playwright() as pw:
        browser = launch(pw)
        for i in range(n):
            page = browser.new_context().new_page()
            page.add_init_script(CLICK_CLOCK)
            start(page, base + f"?PROLIFIC_PID=chromium-{seed}-{i}")
            while True:
                trial = screen_number(page) is not None
                if trial:
                    time.sleep(rng.expovariate(1 / think_s) if think_s > 0 else 0)
                t0 = time.perf_counter()
                if advance(page) == "done":
                    break
                if trial:
                    lat.append(time.perf_counter() - t0)
                    in_page.append(page.evaluate("performance.now() - window.__lookalikeClick") / 1000)
            page.context.close()
        browser.close()
    return lat, in_page


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 3) if xs else None


def count_answers(db_url: str, like: str, acknowledged: dict[str, int]) -> dict:
    """The database counted: ``acknowledged`` is, per participant, the answers whose next screen
    the client saw; an acknowledged answer missing from the database is lost. An answer is what a
    participant submits: a trial's form, each press in a swipe round (a ``swipes`` row answered),
    a swipe set's rating (the round's response then holds it)."""
    from sqlalchemy import func, select

    from db.engine import make_engine, make_sessionmaker
    from db.models import Participant as P
    from db.models import Response, Swipe, Trial

    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as s:
        mine = select(P.id).where(P.external_id.like(like))
        expected = s.scalar(select(func.count(Trial.id)).where(Trial.participant_id.in_(mine)))
        stored = s.scalar(select(func.count(Response.id)).where(Response.participant_id.in_(mine)))
        submitted = Response.id.is_not(None) & (
            Trial.protocol.in_(GRID_PROTOCOLS) | Response.rating.is_not(None)
        )  # a swipe round's response is the set's rating, or written by the service without a submit
        per_pid: dict[str, int] = {}
        for pid, n in s.execute(
            select(P.external_id, func.count(func.distinct(Response.trial_id)))
            .join(Response, Response.participant_id == P.id)
            .join(Trial, Trial.id == Response.trial_id)
            .where(P.id.in_(mine), submitted)
            .group_by(P.external_id)
        ):
            per_pid[pid] = per_pid.get(pid, 0) + n
        for pid, n in s.execute(
            select(P.external_id, func.count(Swipe.id))
            .join(Swipe, Swipe.participant_id == P.id)
            .where(P.id.in_(mine), Swipe.liked.is_not(None))
            .group_by(P.external_id)
        ):
            per_pid[pid] = per_pid.get(pid, 0) + n
        swipes = s.scalar(select(func.count(Swipe.id)).where(Swipe.participant_id.in_(mine), Swipe.liked.is_not(None)))
        completed = s.scalar(select(func.count(P.id)).where(P.id.in_(mine), P.completed_at.is_not(None)))
        twice = s.scalar(
            select(func.count()).select_from(
                select(P.external_id).where(P.id.in_(mine)).group_by(P.external_id).having(func.count() > 1).subquery()
            )
        )
        distinct_trials = s.scalar(
            select(func.count(func.distinct(Response.trial_id))).where(Response.participant_id.in_(mine))
        )
    engine.dispose()
    return {
        "answers_expected": expected,
        "answers_acknowledged": sum(acknowledged.values()),
        "answers_stored": stored,
        "swipes_stored": swipes,
        "answers_lost": sum(max(0, n - per_pid.get(pid, 0)) for pid, n in acknowledged.items()),
        "answers_duplicates": stored - distinct_trials,
        "answers_unanswered": expected - distinct_trials,
        "participants_stored_twice": twice,
        "completed": completed,
    }


def _parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=40)
    ap.add_argument("--think-s", type=float, default=3.0, help="mean think time per screen (exponential)")
    ap.add_argument("--ramp-s", type=float, default=10.0, help="participants arrive spread over this many seconds")
    ap.add_argument("--processes", type=int, default=1, help="app processes (more than one: behind nginx)")
    ap.add_argument("--database", choices=["sqlite", "postgresql"], help="default: sqlite for 1 process")
    ap.add_argument(
        "--trials", type=int, default=4, help="trials per protocol and participant (3 protocols, plus checks)"
    )
    ap.add_argument(
        "--protocols",
        default=",".join(GRID_PROTOCOLS),
        help=f"the study's protocols, comma-separated, from {', '.join(NAMES)} (default: the three grid protocols)",
    )
    ap.add_argument("--browsers", type=int, default=0, help="cross-check: K light participants, then K Chromium")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--home", help="LOOKALIKE_HOME to reuse (model weights, feature cache); default a temp folder")
    ap.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="a Streamlit option (1 process only)"
    )
    return ap.parse_args()


def main() -> None:
    args = _parse_args()
    database = args.database or ("sqlite" if args.processes == 1 else "postgresql")
    from db.pgserver import TempPostgres, free_port

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(args.home) if args.home else Path(tmp) / "home"
        pg = TempPostgres.start() if database == "postgresql" else None
        server = None
        try:
            db_url = pg.create_database("served") if pg else f"sqlite:///{Path(tmp) / 'served.db'}"
            build_bench_study(db_url, home, args.trials, tuple(args.protocols.split(",")))
            port = free_port()
            env = {
                **os.environ,
                "LOOKALIKE_DB": db_url,
                "LOOKALIKE_HOME": str(home),
                "LOOKALIKE_OFFLINE": "1",
                "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            }
            log = Path(tmp) / "server.log"
            server = start_server(db_url, port, args.processes, env, args.option, log)
            base = f"http://localhost:{port}/"
            result = _measure(args, database, base, server.pid, db_url)
            if args.browsers:
                result["cross_check"] = _cross_check(args, base)
            if result["errors"]:
                print("the server's log ends:\n" + "\n".join(log.read_text().splitlines()[-40:]), file=sys.stderr)
        finally:
            if server is not None:
                import signal

                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            if pg is not None:
                pg.stop()
    emit(result)


def _measure(args: argparse.Namespace, database: str, base: str, server_pid: int, db_url: str) -> dict:
    """Warm every app process up, then run the light participants against ``base`` and measure: answers
    counted in the database, latencies, the server's CPU and memory, the clients' CPU."""
    # warm-up: each app process imports the app and its libraries at its first page, once;
    # measured from here on is what every further participant costs
    warm = [Participant(base, f"warmup-{i}", 0, random.Random(i), first_page_only=True) for i in range(8)]
    asyncio.run(_all(warm))
    before = server_snapshot(server_pid)
    client_cpu0, t0 = time.process_time(), time.perf_counter()
    people, errors = run_light(base, args.participants, args.think_s, args.ramp_s, args.seed, "bench")
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - client_cpu0
    after = server_snapshot(server_pid)
    counts = count_answers(db_url, "bench-%", {p.pid: p.answers for p in people})
    lat = [x for p in people for x in p.submit_s]
    first = [p.first_page_s for p in people if p.first_page_s is not None]
    server_cpu = after["cpu_s"] - before["cpu_s"]
    return {
        "participants": args.participants,
        "think_s": args.think_s,
        "processes": args.processes,
        "database": database,
        "options": args.option,
        **counts,
        "errors": len(errors),
        "error_examples": errors[:3],
        "submit_next_p50_s": _pct(lat, 50),
        "submit_next_p95_s": _pct(lat, 95),
        "submit_next_max_s": round(max(lat), 3) if lat else None,
        "first_page_p95_s": _pct(first, 95),
        "answers_per_s": round((counts["answers_stored"] + counts["swipes_stored"]) / wall, 2),
        "wall_s": round(wall, 1),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_ms_per_answer": round(
            1000 * server_cpu / max(1, counts["answers_stored"] + counts["swipes_stored"]), 1
        ),
        "rss_mb_before": list(before["rss_mb"].values()),
        "rss_mb_after": list(after["rss_mb"].values()),
        "client_cpu_s": round(client_cpu, 2),
        "client_cpu_share": round(client_cpu / max(1e-9, client_cpu + server_cpu), 3),
        "client_cpu_of_machine": round(client_cpu / (wall * (os.cpu_count() or 1)), 3),
    }


def _cross_check(args: argparse.Namespace, base: str) -> dict:
    """``--browsers K``: K light participants, then K Chromium pages, one at a time on both sides so
    that the two measure the same thing; their latencies side by side."""
    light = [run_light(base, 1, args.think_s, 0, args.seed + 1 + i, f"xlight{i}") for i in range(args.browsers)]
    light_lat = [x for run in light for p in run[0] for x in p.submit_s]
    chrome, chrome_in_page = run_browsers(base, args.browsers, args.think_s, args.seed)
    return {
        "participants": args.browsers,
        "light_p50_s": _pct(light_lat, 50),
        "light_p95_s": _pct(light_lat, 95),
        "light_errors": sum(len(run[1]) for run in light),
        "chromium_p50_s": _pct(chrome, 50),
        "chromium_p95_s": _pct(chrome, 95),
        "chromium_in_page_p50_s": _pct(chrome_in_page, 50),
        "chromium_in_page_p95_s": _pct(chrome_in_page, 95),
        "screens": [len(light_lat), len(chrome)],
    }


if __name__ == "__main__":
    main()
