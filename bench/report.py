"""The report of a large study: at least 100,000 judgement rows (the export's ``judgements`` table)
in a real SQLite database, reported as ``lookalike report`` (HTML) and ``lookalike report --json``.

The study is the demo study (``lookalike demo``: the demo catalog, its four conditions; features
and masks come from the settings' cache, so only the first run computes them), serving the
protocols given (default: all three, so every section of the report is computed). Its answers
are simulated participants (the issue's effects: efficientnet/u2netp 1.5, efficientnet/none 1.0,
ssim/u2netp -0.5, ssim/none -1.0) from the simulator's data-frame path
(:func:`survey.analysis.simulate.simulate_judgements`, one call per protocol on the same plans),
written as participants, trials and answers with bulk inserts: the rows the service would have
stored, in seconds rather than the minutes of answering screen by screen. ``rows`` is counted
in the database (the export's judgements table) and must equal the rows simulated. Neither the
build nor the filling is timed.

Timed: ``html_s``, ``compute_results`` + ``render_html`` (as ``lookalike report``, without
writing the file); ``json_s``, the command ``lookalike report --json`` run in this process
(stdout captured; it writes no HTML). ``profiled_s`` says where the HTML report's time goes (see
:func:`stage_timings`). Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import itertools
import json
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import insert, select

from bench._common import emit
from db.engine import make_engine, make_sessionmaker
from db.models import CatalogItem, Participant, Response, Trial, UnitCount
from survey.participants import assignment, planning
from survey.protocols import NAMES as PROTOCOLS

EFFECTS = {"efficientnet/u2netp": 1.5, "efficientnet/none": 1.0, "ssim/u2netp": -0.5, "ssim/none": -1.0}


def build(url: str, protocols: tuple[str, ...], home: Path | None) -> int:
    """The demo study (as ``lookalike demo`` builds it) serving ``protocols``; returns its id."""
    from similarity.catalogs.demo import generate_demo_catalog
    from survey.settings import Settings
    from survey.study.build import build_study
    from survey.study.config import StudyConfig

    settings = Settings.from_env()
    home = home or settings.home
    manifest = generate_demo_catalog(home / "demo-catalog", seed=7)
    config = StudyConfig(
        name="demo", catalog=str(manifest), reference_filter={"view": "packshot"}, seed=7, protocols=protocols
    )
    engine = make_engine(url)
    result = build_study(
        make_sessionmaker(engine), config, cache_dir=home / "cache", progress=False, offline=settings.offline
    )
    engine.dispose()
    return result.study_id


def simulated(url: str, study_id: int, rows: int, seed: int) -> tuple[int, dict[str, pd.DataFrame]]:
    """Simulated answers of every protocol of the study, from enough participants for ``rows``
    judgement rows: (participants, the judgements table of each protocol)."""
    from survey.analysis.simulate import ResponseModel, simulate_judgements, study_design

    engine = make_engine(url)
    design = study_design(make_sessionmaker(engine), study_id)
    engine.dispose()
    model = ResponseModel(effects=EFFECTS)
    participants, frames = 0, {}
    while sum(map(len, frames.values())) < rows:
        per_participant = sum(map(len, frames.values())) / participants if participants else 0
        participants = int(rows / per_participant * 1.01) + 1 if per_participant else 50
        # the same seed for every protocol: simulate_judgements plans first, so every protocol's
        # answers come from the same plans (the trials of one participant, all protocols)
        frames = {
            p: simulate_judgements(design, participants, protocol=p, model=model, rng=np.random.default_rng(seed))
            for p in design.protocols
        }
    return participants, frames


def _answer(protocol: str, grids: list[str], outcomes: list[str], rating) -> dict:
    """The answer columns of a response from its grids (display order) and their outcomes."""
    if protocol == "rating":
        return {"rating": int(rating)}
    if protocol == "pairwise":
        return {"choice": {"win": "left", "loss": "right", "tie": "tie"}[outcomes[0]]}
    return {"best": grids[outcomes.index("best")], "worst": grids[outcomes.index("worst")]}


def store(url: str, study_id: int, participants: int, frames: dict[str, pd.DataFrame]) -> None:
    """Participants, trials, answers and unit counts as the service stores them, in bulk."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    with make_sessionmaker(engine).begin() as s:
        ref_id = dict(
            s.execute(select(CatalogItem.item_id, CatalogItem.id).where(CatalogItem.study_id == study_id)).all()
        )
        grids, catch = planning.grids_by_reference(s, study_id)
        protocols = tuple(frames)
        pool = assignment.unit_pool(grids, catch, protocols)
        unit_key = {(p, frozenset(u.grid_ids)): u.key for p in protocols for u in pool.units[p]}
        person = {"study_id": study_id, "source": "direct", "url_params": {}, "flags": [], "demographics": {}}
        times = {"consented_at": now, "instructions_done_at": now, "trials_done_at": now, "completed_at": now}
        people = s.scalars(
            insert(Participant).returning(Participant.id, sort_by_parameter_order=True),
            [{**person, **times, "token": secrets.token_urlsafe(24)} for _ in range(participants)],
        ).all()
        trials, answers, counts = [], [], {}
        for protocol, frame in frames.items():
            shown = frame.drop_duplicates(["response_id", "grid_position"]).sort_values(
                ["response_id", "grid_position"]
            )
            columns = ["response_id", "participant", "trial_position", "reference", "grid", "outcome", "rating"]
            for _, rows in itertools.groupby(
                zip(*(shown[c].tolist() for c in columns), strict=True), key=lambda r: r[0]
            ):
                rows = list(rows)
                grid_ids, outcomes = [r[4] for r in rows], [r[5] for r in rows]
                key = unit_key[(protocol, frozenset(grid_ids))]
                counts[key] = counts.get(key, 0) + 1
                _, participant, position, reference, _, _, rating = rows[0]
                pid = people[participant - 1]
                trials.append(
                    {
                        "participant_id": pid,
                        "position": position,
                        "protocol": protocol,
                        "reference_id": ref_id[reference],
                        "grid_ids": grid_ids,
                        "unit": key,
                        "is_catch": False,
                        "shown_at": now - timedelta(seconds=5),
                    }
                )
                answers.append(
                    {
                        "participant_id": pid,
                        "response_ms": 5000,
                        "created_at": now,
                        **_answer(protocol, grid_ids, outcomes, rating),
                    }
                )
        trial_ids = s.scalars(insert(Trial).returning(Trial.id, sort_by_parameter_order=True), trials).all()
        s.execute(insert(Response), [{"trial_id": t, **a} for t, a in zip(trial_ids, answers, strict=True)])
        s.execute(insert(UnitCount), [{"study_id": study_id, "unit": k, "trials": n} for k, n in counts.items()])
    engine.dispose()


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def report_timings(url: str, study_id: int, n_boot: int, seed: int) -> dict:
    """Seconds for the HTML report (with a split by stage) and for ``lookalike report --json``."""
    from survey.analysis.report import render_html
    from survey.analysis.results import compute_results
    from survey.cli import main as cli
    from survey.study.export import tables

    engine = make_engine(url)
    make_session = make_sessionmaker(engine)
    t0 = time.perf_counter()
    results = compute_results(make_session, study_id, n_boot=n_boot, seed=seed)
    page = render_html(results)
    html_s = time.perf_counter() - t0
    stages = stage_timings(make_session, study_id, n_boot, seed)
    rows = len(tables(make_session, study_id)["judgements"])
    engine.dispose()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        t0 = time.perf_counter()
        code = cli(["report", "--db", url, "--json", "--n-boot", str(n_boot), "--seed", str(seed)])
        json_s = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"lookalike report --json exited with {code}")
    printed = json.loads(out.getvalue().strip().splitlines()[-1])
    if printed["study"] != results.study:
        raise SystemExit("lookalike report --json reported another study")
    return {
        "rows": rows,
        "html_s": round(html_s, 2),
        "json_s": round(json_s, 2),
        "html_bytes": len(page),
        "profiled_s": stages,
    }


def stage_timings(make_session, study_id: int, n_boot: int, seed: int) -> dict[str, float]:
    """Where the HTML report's time goes: the seconds spent in each function that
    :func:`survey.analysis.results.compute_results` calls (all calls of it summed), and in
    ``render_html``; measured under cProfile, so somewhat inflated, and always in step with
    what ``compute_results`` does. Stages under 10 ms are left out."""
    from survey.analysis.report import render_html
    from survey.analysis.results import compute_results

    profile = cProfile.Profile()
    results = profile.runcall(compute_results, make_session, study_id, n_boot=n_boot, seed=seed)
    profile.runcall(render_html, results)
    table = pstats.Stats(profile).stats  # type: ignore[attr-defined]  # {function: (..., cumulative, callers)}
    compute = next(f for f in table if f[2] == "compute_results" and f[0].endswith("results.py"))
    callers_in = [compute, *(f for f in table if f[2].startswith("<") and compute in table[f][4])]  # + comprehensions
    stages: dict[str, float] = {}
    for (_, _, name), (*_, callers) in table.items():
        for caller in callers_in:
            if caller in callers and not name.startswith(("<", "__")):
                stages[name] = stages.get(name, 0.0) + callers[caller][3]
    stages = {name: round(seconds, 3) for name, seconds in stages.items() if seconds >= 0.01}
    render = next(f for f in table if f[2] == "render_html" and f[0].endswith("report.py"))
    stages["render_html"] = round(table[render][3], 3)
    return dict(sorted(stages.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000, help="judgement rows to reach at least")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS), help="protocols of the study, comma-separated")
    ap.add_argument("--n-boot", type=int, default=2000, help="as `lookalike report --n-boot`")
    ap.add_argument("--home", type=Path, help="demo catalog and feature cache (default: the settings' home)")
    ap.add_argument("--keep", type=Path, help="also copy the filled database here (to profile it)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    protocols = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "report.db"
        url = f"sqlite:///{db}"
        study_id, build_s = _timed(lambda: build(url, protocols, args.home))
        (participants, frames), simulate_s = _timed(lambda: simulated(url, study_id, args.rows, args.seed))
        _, store_s = _timed(lambda: store(url, study_id, participants, frames))
        if args.keep:
            shutil.copy(db, args.keep)
        timings = report_timings(url, study_id, args.n_boot, args.seed)
    rows = timings["rows"]
    if rows != sum(map(len, frames.values())):
        raise SystemExit(
            f"the database holds {rows} judgement rows, the simulation made {sum(map(len, frames.values()))}"
        )
    emit(
        {
            "protocols": list(protocols),
            "participants": participants,
            "n_boot": args.n_boot,
            **timings,
            "build_s": round(build_s, 1),
            "simulate_s": round(simulate_s, 1),
            "store_s": round(store_s, 1),
        }
    )


if __name__ == "__main__":
    main()
