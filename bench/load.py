"""Many participants at once: N concurrent simulated participants (threads) take a whole study
through the same service functions the pages call, against SQLite and PostgreSQL.

Mixed in at random, as real participants do: reloads (the state is read again), double
submits (the same answer sent twice in a row, and by two threads at the same moment, as a
double click or a second tab does), and returning through the recruitment link (the same
PROLIFIC_PID starts again and must resume). Afterwards the database is counted: every trial
answered exactly once, nothing lost, no participant created twice.

Prints one JSON list last: one object per database with
participants, answers_expected, answers_stored, duplicates, lost, errors, p50_ms, p95_ms, db.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import func, select

from bench._common import emit
from db.engine import make_engine, make_sessionmaker
from db.models import Participant, Response, Trial
from survey.participants import service


def build_load_study(url: str, catalog: Path, cache_dir: Path, trials: int = 6):
    from survey.study.build import build_study
    from survey.study.config import Component, StudyConfig

    engine = make_engine(url)
    config = StudyConfig(
        name="load",
        catalog=str(catalog),
        methods=(Component("ssim"), Component("efficientnet")),
        segmenters=(Component("none"),),
        references_per_category=3,
        reference_filter={"view": "packshot"},
        protocols=("rating", "pairwise"),
        trials_per_participant=trials,
        attention_check_rate=0.2,
        ask_comment=True,
        seed=5,
    )
    build_study(make_sessionmaker(engine), config, cache_dir=cache_dir, progress=False)
    engine.dispose()


class _Participant:
    def __init__(self, make_session, study_id: int, pid: str, seed: int, pool: ThreadPoolExecutor, think_ms: float = 0):
        self.make_session, self.study_id, self.pid, self.think_ms = make_session, study_id, pid, think_ms
        self.rng = np.random.default_rng(seed)
        self.pool = pool
        self.latencies: list[float] = []

    def _answer(self, token: str, trial) -> None:
        if trial.protocol == "rating":
            fn, args = service.submit_rating, (int(self.rng.integers(1, 8)),)
        else:
            fn, args = service.submit_pairwise, (str(self.rng.choice(["left", "right", "tie"])),)
        t0 = time.perf_counter()
        if self.rng.random() < 0.1:  # a double click: the same answer twice, at the same moment
            twin = self.pool.submit(fn, self.make_session, token, trial.trial_id, *args)
            fn(self.make_session, token, trial.trial_id, *args)
            twin.result()
        else:
            fn(self.make_session, token, trial.trial_id, *args)
        self.latencies.append((time.perf_counter() - t0) * 1000)
        if self.rng.random() < 0.1:  # a resubmitted form after a reload: must change nothing
            fn(self.make_session, token, trial.trial_id, *args)

    def run(self) -> None:
        params = {"PROLIFIC_PID": self.pid, "STUDY_ID": "load", "SESSION_ID": self.pid}
        token = service.start_participant(self.make_session, self.study_id, params, self.rng)
        service.finish_instructions(self.make_session, token)
        while True:
            if self.rng.random() < 0.2:  # a reload reads the state again
                service.participant_state(self.make_session, token)
            if self.rng.random() < 0.05:  # back through the recruitment link: resumes
                again = service.start_participant(self.make_session, self.study_id, params, self.rng)
                assert again == token, "a returning participant got a new session"
            state = service.participant_state(self.make_session, token)
            if state.stage != "trial":
                break
            service.mark_shown(self.make_session, token, state.trial.trial_id)
            if self.think_ms:
                time.sleep(self.rng.exponential(self.think_ms) / 1000)
            self._answer(token, state.trial)
        if state.stage == "questions":
            service.submit_questions(self.make_session, token, {}, f"comment from {self.pid}")
            service.submit_questions(self.make_session, token, {}, "a second, ignored submit")


def run_load(url: str, participants: int = 100, seed: int = 0, think_ms: float = 0) -> dict:
    engine = make_engine(url)
    make_session = make_sessionmaker(engine)
    study = service.current_study(make_session, "load")
    errors: list[str] = []
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=participants) as twins, ThreadPoolExecutor(max_workers=participants) as pool:
        people = [
            _Participant(make_session, study.id, f"load-{seed}-{i}", seed * 100_000 + i, twins, think_ms)
            for i in range(participants)
        ]

        def one(p: _Participant) -> None:
            try:
                p.run()
            except Exception as e:  # counted and reported: the benchmark's point is that there are none
                with lock:
                    errors.append(f"{p.pid}: {type(e).__name__}: {e}")

        t0 = time.perf_counter()
        list(pool.map(one, people))
        wall = time.perf_counter() - t0
    with make_session() as s:
        mine = select(Participant.id).where(
            Participant.study_id == study.id, Participant.external_id.like(f"load-{seed}-%")
        )
        n_participants = s.scalar(select(func.count()).select_from(mine.subquery()))
        expected = s.scalar(select(func.count(Trial.id)).where(Trial.participant_id.in_(mine)))
        stored = s.scalar(select(func.count(Response.id)).where(Response.participant_id.in_(mine)))
        distinct = s.scalar(
            select(func.count(func.distinct(Response.trial_id))).where(Response.participant_id.in_(mine))
        )
        completed = s.scalar(
            select(func.count(Participant.id)).where(Participant.id.in_(mine), Participant.completed_at.is_not(None))
        )
    engine.dispose()
    lat = np.concatenate([p.latencies for p in people]) if people else np.zeros(1)
    return {
        "db": url.split(":", 1)[0].split("+", 1)[0],
        "participants": participants,
        "participants_stored": n_participants,
        "completed": completed,
        "answers_expected": expected,
        "answers_stored": stored,
        "duplicates": stored - distinct,
        "lost": expected - distinct,
        "errors": len(errors),
        "error_examples": errors[:3],
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "think_ms": think_ms,
        "wall_s": round(wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--participants", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--think-ms",
        type=float,
        default=0,
        help="mean think time per trial (exponential); 0 = everyone answers as fast as possible",
    )
    ap.add_argument("--pg-url", help="an empty PostgreSQL database to use (default: a throwaway local server)")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = ap.parse_args()
    from db.pgserver import TempPostgres
    from similarity.catalogs.demo import generate_demo_catalog

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        catalog = generate_demo_catalog(root / "catalog", seed=5, per_category=8)
        urls = [f"sqlite:///{root / 'load.db'}"]
        server = None
        if args.pg_url:
            urls.append(args.pg_url)
        elif not args.no_postgres:
            server = TempPostgres.start()
            urls.append(server.create_database("load"))
        try:
            for url in urls:
                build_load_study(url, catalog, root / "cache")
                results.append(run_load(url, args.participants, args.seed, args.think_ms))
                print(results[-1], file=sys.stderr)
        finally:
            if server is not None:
                server.stop()
    emit(results)


if __name__ == "__main__":
    main()
