"""From a return on Prolific to the place being free, with ``lookalike serve --prolific-sync-minutes N``.

A real served run: the fake Prolific API (tests/prolific_fake.py) in this process, a tiny study
(one place: ``max_participants = 1``) in a SQLite file, and ``lookalike serve`` as a child process
with ``PROLIFIC_TOKEN`` and ``LOOKALIKE_PROLIFIC_API`` pointing at the fake. Each round: a
participant starts with a PROLIFIC_PID and answers a screen (through the participant service, on
the served database), a newcomer is refused (the study is full), then, at a random moment, the
participant returns on the platform; the clock runs until the database shows them ``returned``,
and a newcomer is admitted at once. Since the sync runs every N minutes, the delay is up to N
minutes (N/2 on average) plus the sync itself.

Prints one JSON object last: rounds, sync_minutes, the delay of each round (s), mean and max, the
newcomer admitted each time, and the serve process's sync log lines.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import emit
from tests.prolific_fake import FakeProlific

PSTUDY = "60aca280709ee40ec37d4885"


def build(url: str, home: Path) -> None:
    from db.engine import make_engine, make_sessionmaker
    from similarity.catalogs.demo import generate_demo_catalog
    from survey.study.build import build_study
    from survey.study.config import Component, StudyConfig

    catalog = generate_demo_catalog(home / "catalog", seed=5, per_category=8)
    config = StudyConfig(
        name="prolific-bench", catalog=str(catalog), methods=(Component("ssim"),), segmenters=(Component("none"),),
        references_per_category=1, trials_per_participant=2, max_participants=1, prolific_study_id=PSTUDY,
    )  # fmt: skip
    engine = make_engine(url)
    build_study(make_sessionmaker(engine), config, cache_dir=home / "cache", progress=False)
    engine.dispose()


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"lookalike serve exited ({proc.returncode}) while starting")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            time.sleep(0.3)
    sys.exit("lookalike serve did not become healthy")


def one_round(sessions, study_id: int, fake: FakeProlific, i: int, rng: random.Random, every_s: float) -> dict:
    """One participant in, out on Prolific at a random moment; seconds until their place is free here."""
    from survey.participants import service
    from survey.study.errors import StudyUnavailable

    pid = f"bench{i:03d}"
    fake.add(PSTUDY, pid)
    token = service.start_participant(sessions, study_id, {"PROLIFIC_PID": pid}, None)
    service.finish_instructions(sessions, token)
    trial = service.participant_state(sessions, token).trial
    service.mark_shown(sessions, token, trial.trial_id)
    service.submit_rating(sessions, token, trial.trial_id, 4)
    try:
        service.start_participant(sessions, study_id, {"PROLIFIC_PID": f"refused{i}"}, None)
        sys.exit("the study admitted a second participant while its one place was taken")
    except StudyUnavailable:
        pass
    time.sleep(rng.uniform(0, every_s))  # the return falls anywhere in the sync cycle
    returned = time.monotonic()
    fake.set(pid, "RETURNED", completed_at=datetime.now(UTC))
    while service.participant_state(sessions, token).stage != "returned":
        time.sleep(0.1)
    freed = time.monotonic()
    newcomer = service.start_participant(sessions, study_id, {"PROLIFIC_PID": f"next{i:03d}"}, None)
    fake.add(PSTUDY, f"next{i:03d}")
    fake.set(f"next{i:03d}", "RETURNED")  # leaves too, so the next round finds the place free
    while service.participant_state(sessions, newcomer).stage != "returned":
        time.sleep(0.1)
    return {"pid": pid, "delay_s": round(freed - returned, 2), "newcomer_admitted": True}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--sync-minutes", type=float, default=1.0)
    ap.add_argument("--port", type=int, default=8599)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from db.engine import make_engine, make_sessionmaker
    from survey.participants import service

    home = Path(tempfile.mkdtemp(prefix="lookalike-prolific-bench-"))
    url = f"sqlite:///{home / 'study.db'}"
    build(url, home)
    fake = FakeProlific()
    fake.create(PSTUDY)
    with fake.running():
        env = {
            **os.environ, "PROLIFIC_TOKEN": fake.token, "LOOKALIKE_PROLIFIC_API": fake.url,
            "LOOKALIKE_HOME": str(home), "LOOKALIKE_OFFLINE": "1",
        }  # fmt: skip
        log = (home / "serve.log").open("w+")  # the child writes it until the end
        cmd = [sys.executable, "-m", "survey.cli", "serve", "--db", url, "--port", str(args.port),
               "--address", "127.0.0.1", "--prolific-sync-minutes", str(args.sync_minutes)]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(args.port, proc)
            engine = make_engine(url)
            sessions = make_sessionmaker(engine)
            study = service.current_study(sessions, "prolific-bench")
            rng = random.Random(args.seed)
            rounds = [one_round(sessions, study.id, fake, i, rng, args.sync_minutes * 60) for i in range(args.rounds)]
            engine.dispose()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        log.seek(0)
        lines = [x.rstrip() for x in log if "prolific sync" in x or "Prolific study" in x]
    delays = [r["delay_s"] for r in rounds]
    emit({
        "rounds": len(rounds), "sync_minutes": args.sync_minutes, "delays_s": delays,
        "mean_delay_s": round(sum(delays) / len(delays), 2), "max_delay_s": max(delays),
        "newcomer_admitted": all(r["newcomer_admitted"] for r in rounds), "serve_exit": proc.returncode,
        "sync_log": lines[-6:],
    })  # fmt: skip


if __name__ == "__main__":
    main()
