"""Running a study: ``build``, ``demo``, ``serve`` and ``study list / close / open``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from similarity.catalogs.feeds import FEEDS
from similarity.errors import UserError
from survey import protocols
from survey.cli.common import Subparsers, add_db_flag, add_executor_flags, executor_from_flags, open_db
from survey.settings import ENV_PROLIFIC_TOKEN, Settings
from survey.web import admin_password, serving

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from survey.prolific.periodic import PeriodicSync
    from survey.study.build import BuildResult
    from survey.study.config import StudyConfig

DEMO_STUDY = "demo"


def register(sub: Subparsers) -> None:
    add_build(sub)
    add_demo(sub)
    add_serve(sub)
    add_thumbnails(sub)
    add_study(sub)


def _print_build(result: BuildResult) -> None:
    print(
        f"study '{result.name}' (id {result.study_id}): {result.conditions} conditions, "
        f"{result.references} references"
        + (f", a swipe pool of {result.swipe_pool} products" if result.swipe_pool else "")
        + f", {result.grids} distinct grids, built in {result.seconds:.1f}s"
    )
    for sk in result.skipped:
        print(f"  skipped {sk.where}: {sk.reason}")
    for seg, items in result.not_segmented.items():
        print(
            f"  {seg}: nothing found in {len(items)} image(s), kept whole: {', '.join(items[:10])}"
            + (" ..." if len(items) > 10 else "")
        )


# --- build --------------------------------------------------------------------------------


def add_build(sub: Subparsers) -> None:
    b = sub.add_parser("build", help="compute every condition's top-k and store blinded grids")
    add_db_flag(b)
    b.add_argument("--config", help="study TOML file (see survey/example_study.toml); replaces the flags below")
    b.add_argument("--catalog", help="manifest.csv or a folder of category sub-folders")
    b.add_argument("--name", help="study name")
    b.add_argument("--protocols", nargs="+", default=["rating"], choices=list(protocols.NAMES))
    b.add_argument(
        "--methods",
        nargs="+",
        default=["ssim", "efficientnet"],
        help="method names, optionally name:key=value,... (see `lookalike methods`)",
    )
    b.add_argument("--segmenters", nargs="+", default=["none", "u2netp"])
    b.add_argument("--references-per-category", type=int, default=3)
    b.add_argument(
        "--reference-filter",
        nargs="*",
        default=[],
        metavar="COLUMN=VALUE",
        help="only items whose manifest column has this value become references",
    )
    b.add_argument("-k", type=int, default=5)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--trials-per-participant", type=int, default=12)
    b.add_argument("--replace", action="store_true", help="rebuild a study of the same name (deletes its answers)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument(
        "--feed",
        choices=list(FEEDS),
        default="manifest",
        help="catalog format (merchant: a Merchant Center feed); image URLs are fetched first",
    )
    add_executor_flags(b)
    b.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from survey.study.config import check_components
    from survey.study.config_file import load_config

    if args.config:
        config = load_config(args.config)
    elif not (args.catalog and args.name):
        raise UserError("build needs a study: give --config STUDY.toml, or --catalog and --name")
    else:
        config = _config_from_flags(args)
    check_components(config.methods, config.segmenters)  # before the database is opened (or created)
    # the build imports torch (seconds): only once the study is known to be valid
    from similarity.runtime import tune_for_throughput
    from survey.study.build import build_study

    executor = executor_from_flags(args)
    make_session = open_db(settings)
    print(f"database: {settings.db_url}")
    tune_for_throughput()
    _print_build(
        build_study(
            make_session,
            config,
            replace=args.replace,
            cache_dir=settings.cache_dir,
            progress=not args.quiet,
            offline=settings.offline,
            media_dir=settings.media_dir,
            executor=executor,
            feed=args.feed,
            image_store=settings.image_store,
        )
    )
    return 0


def _config_from_flags(args: argparse.Namespace) -> StudyConfig:
    from survey.study.config import Component, ConfigError, StudyConfig

    bad = [f for f in args.reference_filter if "=" not in f]
    if bad:
        raise ConfigError(f"--reference-filter: '{bad[0]}' needs the form COLUMN=VALUE, e.g. view=packshot")
    return StudyConfig(
        name=args.name,
        catalog=args.catalog,
        methods=tuple(Component.parse(m) for m in args.methods),
        segmenters=tuple(Component.parse(s) for s in args.segmenters),
        references_per_category=args.references_per_category,
        reference_filter=dict(f.split("=", 1) for f in args.reference_filter),
        k=args.k,
        seed=args.seed,
        trials_per_participant=args.trials_per_participant,
        protocols=tuple(args.protocols),
    )


# --- demo ---------------------------------------------------------------------------------


#: The demo study's protocols: rating screens, then a shopper's swipe rounds (one per category).
DEMO_PROTOCOLS = ("rating", "swipe")
#: The demo study's primary comparison and stopping rule (the [primary] and [stopping] tables of a study file).
DEMO_PRIMARY = ("rating", "efficientnet/u2netp", "ssim/none")
DEMO_LOOKS = (20, 40, 60)


def add_demo(sub: Subparsers) -> None:
    d = sub.add_parser("demo", help="generate the demo catalog, build the demo study, serve the survey")
    add_db_flag(d)
    d.add_argument("--no-serve", action="store_true", help="stop after the build")
    d.add_argument("--rebuild", action="store_true")
    d.add_argument("--port", type=int, default=8501)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument(
        "--per-category",
        type=int,
        default=30,
        metavar="N",
        help="products per category in the demo catalog (default 30; fewer builds faster)",
    )
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from db.models import Study
    from similarity.catalogs.demo import generate_demo_catalog
    from similarity.runtime import tune_for_throughput
    from survey.study.build import build_study
    from survey.study.config import StudyConfig
    from survey.study.stopping import PrimaryComparison, StoppingRule

    tune_for_throughput()
    if args.per_category < 6:
        raise UserError(f"--per-category {args.per_category} is too few for a top-5 grid; use at least 6")
    manifest = generate_demo_catalog(settings.home / "demo-catalog", seed=args.seed, per_category=args.per_category)
    print(f"demo catalog: {manifest}")
    make_session = open_db(settings)
    print(f"database: {settings.db_url}")
    with make_session() as s:
        exists = s.scalar(select(Study.id).where(Study.name == DEMO_STUDY)) is not None
    if exists and not args.rebuild:
        print(f"study '{DEMO_STUDY}' already built in this database (--rebuild to build it again)")
    else:
        config = StudyConfig(
            name=DEMO_STUDY,
            catalog=str(manifest),
            reference_filter={"view": "packshot"},
            seed=args.seed,
            protocols=DEMO_PROTOCOLS,
            trials_per_participant=4,
            primary=PrimaryComparison(*DEMO_PRIMARY),
            stopping=StoppingRule("group-sequential", 0.05, DEMO_LOOKS, "obrien-fleming"),
        )
        _print_build(
            build_study(
                make_session,
                config,
                replace=True,
                cache_dir=settings.cache_dir,
                progress=not args.quiet,
                offline=settings.offline,
                media_dir=settings.media_dir,
            )
        )
    if args.no_serve:
        return 0
    serve(dataclasses.replace(settings, study=DEMO_STUDY), port=args.port)


# --- serve --------------------------------------------------------------------------------


def add_serve(sub: Subparsers) -> None:
    s = sub.add_parser("serve", help="serve the survey")
    add_db_flag(s)
    s.add_argument("--port", type=int, default=8501)
    s.add_argument(
        "--address",
        default="localhost",
        help="address to listen on (default localhost; 0.0.0.0 to accept connections from other machines)",
    )
    s.add_argument("--study", help="study name (default: $LOOKALIKE_STUDY, else the most recently built)")
    s.add_argument(
        "--processes",
        type=int,
        default=1,
        help="app processes behind nginx (needs PostgreSQL and Debian's nginx; see README 'Running a study for real')",
    )
    s.add_argument(
        "--preview",
        action="store_true",
        help="serve the participant flow as a researcher's preview (PREVIEW banner; nothing is stored)",
    )
    s.add_argument(
        "--prolific-sync-minutes",
        type=float,
        metavar="N",
        help="sync with Prolific now and every N minutes (`lookalike prolific sync`; needs PROLIFIC_TOKEN)",
    )
    s.add_argument("--prolific-study", metavar="ID", help="the study's id on Prolific (default: [prolific] study_id)")
    s.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    serving.check_processes(args.processes, settings.db_url)
    secrets = (Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml")
    warning = admin_password.check_admin_password(args.address, settings.admin_password, secrets)
    if warning:
        print(f"lookalike serve: {warning}", file=sys.stderr, flush=True)
    settings = dataclasses.replace(settings, study=args.study or settings.study, preview=args.preview)
    background = _prolific_sync(args, settings) if args.prolific_sync_minutes is not None else None
    env = _serve_env(settings)
    if args.processes == 1 and background is None:
        serve(settings, port=args.port, address=args.address)
    if args.processes == 1 and background is not None:
        return serving.run_single(port=args.port, address=args.address, env=env, background=background)
    farm_env = _serve_env(dataclasses.replace(settings, behind_proxy=True))  # the app trusts nginx's X-Real-IP
    return serving.run_farm(
        port=args.port,
        address=args.address,
        processes=args.processes,
        env=farm_env,
        background=background,
        trusted_proxies=settings.trusted_proxies,
    )


def _prolific_sync(args: argparse.Namespace, settings: Settings) -> PeriodicSync:
    """The background sync of ``--prolific-sync-minutes``, checked before anything starts: the token
    is set, the study exists and has a Prolific id, the interval is at least 3 seconds."""
    from survey.participants import service
    from survey.prolific.client import ProlificClient
    from survey.prolific.periodic import PeriodicSync
    from survey.prolific.sync import format_sync, prolific_study_id, run_sync

    if args.prolific_sync_minutes < 0.05:
        raise serving.ServeError(f"--prolific-sync-minutes must be at least 0.05, got {args.prolific_sync_minutes}")
    if args.preview:
        raise serving.ServeError("--prolific-sync-minutes with --preview: a preview has no participants to sync")
    client = ProlificClient(settings.prolific_token, settings.prolific_api)
    make_session = open_db(settings, must_exist=True)
    study = service.current_study(make_session, settings.study)
    sid = prolific_study_id(make_session, study.id, args.prolific_study)
    print(f"Prolific study {sid}: synced now and every {args.prolific_sync_minutes:g} minutes", flush=True)

    def once() -> str:
        return format_sync(run_sync(make_session, study.id, client, prolific_study=sid, by="lookalike serve"))

    return PeriodicSync(once, args.prolific_sync_minutes * 60)


def _serve_env(settings: Settings) -> dict[str, str]:
    """The app processes' environment: the settings, and never the Prolific token (they do not call it)."""
    inherited = {k: v for k, v in os.environ.items() if k != ENV_PROLIFIC_TOKEN}
    return {**inherited, **settings.to_env(), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}


def serve(settings: Settings, *, port: int, address: str = "localhost") -> NoReturn:
    """Replace this process with one Streamlit server running the app with the settings of
    :data:`survey.web.serving.STREAMLIT_OPTIONS`; the app (survey/web/app.py) builds its
    :class:`Settings` from the environment made here."""
    serving.check_app_folder()
    print(f"Survey at http://{address}:{port}/  (Ctrl+C stops it)", flush=True)
    cmd = serving.streamlit_command(port, address)
    # Replace this process with Streamlit: signals (Ctrl+C, a supervisor's SIGTERM) reach it
    # directly and no orphaned server outlives the command.
    os.execve(sys.executable, cmd, _serve_env(settings))


# --- thumbnails ---------------------------------------------------------------------------


def add_thumbnails(sub: Subparsers) -> None:
    t = sub.add_parser(
        "thumbnails", help="render a study's thumbnails into the media folder (build does it; older studies)"
    )
    add_db_flag(t)
    t.add_argument("--study", help="study name (default: $LOOKALIKE_STUDY, else the most recently built)")
    t.set_defaults(func=cmd_thumbnails)


def cmd_thumbnails(args: argparse.Namespace, settings: Settings) -> int:
    from survey.participants import service
    from survey.study import media

    make_session = open_db(settings, must_exist=True)
    study = service.current_study(make_session, args.study or settings.study)
    with make_session() as s:
        photos = media.study_photos(s, study.id)
    written = media.build_thumbnails(settings.media_dir, photos)
    print(f"study '{study.name}': {len(photos)} photos, {written} thumbnails written to {settings.media_dir}")
    return 0


# --- study list / close / open ------------------------------------------------------------


def add_study(sub: Subparsers) -> None:
    p = sub.add_parser(
        "study",
        help="list studies, show one's status, close / reopen one to new participants, or replay its adaptive "
        "pairwise assignment (exit 1 when a recorded choice differs)",
    )
    p.add_argument("action", choices=["list", "status", "close", "open", "replay"])
    p.add_argument("--json", action="store_true", help="status: print JSON (counts per status, places, per unit)")
    p.add_argument("--study", help="study name (default: $LOOKALIKE_STUDY, else the most recently built)")
    add_db_flag(p)
    p.set_defaults(func=cmd_study)


def cmd_study(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import func, select

    from db.models import Participant, Study
    from survey.participants import service

    make_session = open_db(settings, must_exist=True)
    if args.action == "list":
        with make_session() as s:
            rows = s.execute(
                select(
                    Study.name,
                    Study.status,
                    Study.created_at,
                    func.count(Participant.id),
                    func.count(Participant.completed_at),
                )
                .outerjoin(Participant)
                .group_by(Study.id)
                .order_by(Study.id)
            ).all()
        for name, status, created, started, completed in rows:
            print(f"{name}\t{status}\tbuilt {created:%Y-%m-%d %H:%M}\t{started} started, {completed} completed")
        return 0
    study = service.current_study(make_session, args.study or settings.study)
    if args.action == "replay":
        return _replay(make_session, study.id, as_json=args.json)
    if args.action == "status":
        import json

        from survey.analysis.report_sequential import format_sequential
        from survey.analysis.results import nan_to_none
        from survey.analysis.sequential_data import study_sequential
        from survey.participants.status import format_status, refresh_status

        study_now = refresh_status(make_session, study.id)  # idle participants are timed out first
        stopping = study_sequential(make_session, study.id)  # the primary comparison's looks, if a rule is declared
        if args.json:
            both = {**study_now.to_dict(), "stopping": nan_to_none(dataclasses.asdict(stopping)) if stopping else None}
            print(json.dumps(both, indent=2))
        else:
            print(format_status(study_now))
            print("\n" + (format_sequential(stopping) if stopping else "Stopping rule: none declared ([stopping])"))
        return 0
    service.set_study_status(make_session, study.id, "closed" if args.action == "close" else "open")
    closed = "closed: new participants are refused politely, those who started can finish"
    print(f"study '{study.name}' is now {closed if args.action == 'close' else 'open'}")
    return 0


def _replay(make_session: sessionmaker[Session], study_id: int, *, as_json: bool) -> int:
    """``lookalike study replay``: every recorded adaptive choice redone; 0 when all match."""
    import json

    from survey.participants import planning, service

    config = service.study_config(make_session, study_id)
    with make_session() as s:
        replays = planning.replay_adaptive(s, study_id, config)
    bad = [r for r in replays if not r.ok]
    if as_json:
        print(json.dumps([dataclasses.asdict(r) | {"ok": r.ok} for r in replays], indent=2))
    elif config.pairwise_assignment != "adaptive" and not replays:
        print("this study assigns pairwise units uniformly (protocols.pairwise_assignment); nothing to replay")
    else:
        for r in bad:
            print(f"participant {r.participant_id}: " + "; ".join(r.problems))
        choices = sum(r.choices for r in replays)
        ok = len(replays) - len(bad)
        print(f"{ok} of {len(replays)} participants' adaptive choices ({choices} units) replay exactly")
    return 1 if bad else 0
