"""The ``lookalike`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from survey.settings import Settings

DEMO_STUDY = "demo"


def _sessions(db: str | None):
    from db.engine import make_engine, make_sessionmaker

    url = Settings.from_env(db).db_url
    return url, make_sessionmaker(make_engine(url))


def _print_build(result) -> None:
    print(f"study '{result.name}' (id {result.study_id}): {result.conditions} conditions, "
          f"{result.references} references, {result.grids} distinct grids, built in {result.seconds:.1f}s")
    for sk in result.skipped:
        print(f"  skipped {sk.where}: {sk.reason}")
    for seg, items in result.not_segmented.items():
        print(f"  {seg}: nothing found in {len(items)} image(s), kept whole: {', '.join(items[:10])}"
              + (" ..." if len(items) > 10 else ""))


def cmd_build(args: argparse.Namespace) -> int:
    from survey.build import build_study
    from survey.config import load_config

    if args.config:
        config = load_config(args.config)
    elif not (args.catalog and args.name):
        print("lookalike build: give --config STUDY.toml, or --catalog and --name", file=sys.stderr)
        return 2
    else:
        config = _config_from_flags(args)
    url, make_session = _sessions(args.db)
    print(f"database: {url}")
    _print_build(build_study(make_session, config, replace=args.replace, cache_dir=Settings.from_env().cache_dir,
                             progress=not args.quiet))
    return 0


def _config_from_flags(args: argparse.Namespace):
    from survey.config import Component, StudyConfig

    return StudyConfig(
        name=args.name, catalog=args.catalog,
        methods=tuple(Component.parse(m) for m in args.methods),
        segmenters=tuple(Component.parse(s) for s in args.segmenters),
        references_per_category=args.references_per_category,
        reference_filter=dict(f.split("=", 1) for f in args.reference_filter),
        k=args.k, seed=args.seed, trials_per_participant=args.trials_per_participant,
        protocols=tuple(args.protocols),
    )


def serve(db_url: str, *, port: int, study: str | None) -> int:
    app = Path(__file__).with_name("app.py")
    env = {**os.environ, "LOOKALIKE_DB": db_url, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    if study:
        env["LOOKALIKE_STUDY"] = study
    print(f"Survey at http://localhost:{port}/  (Ctrl+C stops it)", flush=True)
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
           "--server.address", "localhost", "--server.headless", "true", "--client.toolbarMode", "minimal",
           # errors go to the server's log, never to a participant's screen (tracebacks name tables and code)
           "--client.showErrorDetails", "none"]
    # Replace this process with Streamlit: signals (Ctrl+C, a supervisor's SIGTERM) reach it
    # directly and no orphaned server outlives the command.
    os.execve(sys.executable, cmd, env)


def cmd_serve(args: argparse.Namespace) -> int:
    return serve(Settings.from_env(args.db).db_url, port=args.port, study=args.study)


def cmd_demo(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from db.models import Study
    from similarity.demo_catalog import generate_demo_catalog
    from survey.build import build_study
    from survey.config import StudyConfig

    settings = Settings.from_env(args.db)
    catalog_dir = settings.home / "demo-catalog"
    manifest = generate_demo_catalog(catalog_dir, seed=args.seed)
    print(f"demo catalog: {manifest}")
    url, make_session = _sessions(args.db)
    print(f"database: {url}")
    with make_session() as s:
        exists = s.scalar(select(Study.id).where(Study.name == DEMO_STUDY)) is not None
    if exists and not args.rebuild:
        print(f"study '{DEMO_STUDY}' already built in this database (--rebuild to build it again)")
    else:
        config = StudyConfig(name=DEMO_STUDY, catalog=str(manifest), reference_filter={"view": "packshot"},
                             seed=args.seed)
        _print_build(build_study(make_session, config, replace=True, cache_dir=settings.cache_dir,
                                 progress=not args.quiet))
    if args.no_serve:
        return 0
    return serve(url, port=args.port, study=DEMO_STUDY)


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from survey.report import format_ci, render_html
    from survey.results import compute_results
    from survey.service import current_study
    from survey.stats import ExclusionRules

    _, make_session = _sessions(args.db)
    study = current_study(make_session, args.study)
    rules = ExclusionRules(failed_checks_max=None if args.keep_failed_checks else args.max_failed_checks,
                           too_fast_max=args.max_too_fast, require_complete=not args.keep_incomplete)
    results = compute_results(make_session, study.id, rules=rules, n_boot=args.n_boot, seed=args.seed)
    Path(args.out).write_text(render_html(results), encoding="utf-8")
    if args.json:
        print(json.dumps(results.to_json(), default=str))
        return 0
    print(f"{'condition':<28}{'n':>6}{'mean':>7}  95% CI")
    for r in sorted(results.conditions, key=lambda r: -r.mean):
        print(f"{r.condition:<28}{r.n_ratings:>6}{r.mean:>7.2f}  {format_ci(r)}")
    print(f"report written to {args.out}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from survey.service import current_study
    from survey.simulate import ResponseModel, parse_effects, simulate

    _, make_session = _sessions(args.db)
    study = current_study(make_session, args.study)
    model = ResponseModel(effects=parse_effects(args.effects), noise_sd=args.noise_sd, bias_sd=args.bias_sd,
                          inattentive=args.inattentive)
    n = simulate(make_session, study.id, args.participants, seed=args.seed, model=model)
    print(f"study '{study.name}': {args.participants} simulated participants stored {n} answers")
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    import json

    from survey.power import power_curve
    from survey.service import current_study
    from survey.simulate import ResponseModel, SimulationError, parse_effects, study_design

    try:
        sizes = [int(x) for x in args.participants.split(",") if x.strip()]
    except ValueError:
        raise SimulationError(f"--participants takes numbers separated by commas, e.g. 10,20,40; got "
                              f"{args.participants!r}") from None
    pair = None
    if args.pair:
        a, comma, b = args.pair.partition(",")
        if not comma:
            raise SimulationError("--pair takes two conditions separated by a comma, e.g. efficientnet/u2netp,ssim/none")
        pair = (a.strip(), b.strip())
    _, make_session = _sessions(args.db)
    study = current_study(make_session, args.study)
    design = study_design(make_session, study.id)
    model = ResponseModel(effects=parse_effects(args.effects), noise_sd=args.noise_sd, bias_sd=args.bias_sd)
    res = power_curve(design, sizes, model=model, pair=pair, reps=args.reps, alpha=args.alpha, target=args.target,
                      seed=args.seed)
    if args.json:
        print(json.dumps({"study": study.name, **res.to_json()}))
        return 0
    effects = ", ".join(f"{k}={v:g}" for k, v in res.effects.items()) or "none (every condition alike)"
    print(f"study '{study.name}': {res.conditions} conditions, {res.references} references, "
          f"{res.trials_per_participant} rating trials per participant; effects: {effects}")
    print(f"{res.reps} simulated studies per size, alpha = {res.alpha:g}; pair: {res.pair[0]} vs {res.pair[1]} "
          "(Holm-corrected Wilcoxon, true direction)")
    print(f"{'participants':>12}  {'Friedman power [95% CI]':<26}pair power [95% CI]")
    for pt in res.points:
        omnibus = f"{pt.friedman_power:.2f} [{pt.friedman_ci_low:.2f}, {pt.friedman_ci_high:.2f}]"
        print(f"{pt.participants:>12}  {omnibus:<26}{pt.pair_power:.2f} [{pt.pair_ci_low:.2f}, {pt.pair_ci_high:.2f}]")
    for what, n in (("Friedman test", res.friedman_needed), ("pair", res.pair_needed)):
        print(f"{what}: " + (f"power >= {res.target:g} from {n} participants (of those tried)" if n else
                             f"power {res.target:g} not reached with up to {max(sizes)} participants"))
    print("participants are those analysed, after exclusions: recruit extra to cover them")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from survey.export import export
    from survey.service import current_study

    _, make_session = _sessions(args.db)
    study = current_study(make_session, args.study)
    for path in export(make_session, study.id, args.out, fmt=args.format, for_spreadsheets=args.spreadsheet_safe):
        print(path)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from similarity.catalog import load_catalog
    from similarity.evaluate import evaluate, parse_filter
    from similarity.cache import Cache
    from similarity.methods import create_method
    from similarity.segmenters import create_segmenter
    from survey.config import Component

    catalog = load_catalog(args.manifest)
    for sk in catalog.skipped:
        print(f"skipped {sk.where}: {sk.reason}", file=sys.stderr)
    methods = [create_method(c.name, **c.options) for c in map(Component.parse, args.methods)]
    segmenters = [create_segmenter(c.name, **c.options) for c in map(Component.parse, args.segmenters)]
    results = evaluate(catalog, methods, segmenters, query_filter=parse_filter(args.query),
                       gallery_filter=parse_filter(args.gallery), within=args.within,
                       cache=Cache(Settings.from_env().cache_dir), progress=not args.json)
    if args.json:
        print(json.dumps({"results": [r.as_json() for r in results]}))
        return 0
    print(f"{'method':<14}{'segmenter':<11}{'recall@1':>9}{'recall@5':>9}{'mAP':>7}{'queries':>8}{'seconds':>9}")
    for r in results:
        m = r.metrics
        print(f"{r.method:<14}{r.segmenter:<11}{m.recall_at_1:>9.3f}{m.recall_at_5:>9.3f}"
              f"{m.mean_average_precision:>7.3f}{m.queries:>8}{r.seconds:>9.1f}")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def cmd_cache(args: argparse.Namespace) -> int:
    from similarity.cache import Cache

    cache = Cache(Settings.from_env().cache_dir)
    if args.action == "clear":
        print(f"freed {_size(cache.clear(args.kind))} from {cache.root}" + (f" ({args.kind})" if args.kind else ""))
        return 0
    usage = cache.usage()
    print(f"cache: {cache.root}")
    for u in usage:
        print(f"  {u.kind:<9}{u.identity:<60}{u.entries:>8} entries {_size(u.bytes):>10}")
    print(f"  total: {sum(u.entries for u in usage)} entries, {_size(sum(u.bytes for u in usage))}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from similarity.weights import download, list_weights

    if args.action == "download":
        if not args.name:
            print("usage: lookalike weights download NAME", file=sys.stderr)
            return 2
        print(f"weights ready at {download(args.name)}")
        return 0
    for spec in list_weights():
        status = spec.status()
        where = spec.path() if status == "present" else spec.how_to_get
        print(f"{spec.name:<34}{status:<24}{where}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from db import migrate
    from db.engine import make_engine

    url = Settings.from_env(args.db).db_url
    engine = make_engine(url, create=False)
    try:
        if args.action == "upgrade":
            before, after = migrate.upgrade(engine)
            print(f"{url}: schema {before or 'empty'} -> {after}" if before != after
                  else f"{url}: already at the newest schema ({after})")
        else:
            state = migrate.schema_state(engine)
            found = "empty" if state.empty else (state.current or f"pre-migration version {state.legacy_version}")
            print(f"{url}: schema {found}; this Lookalike needs {state.head}"
                  + ("" if state.up_to_date or state.empty else " (run `lookalike db upgrade`)"))
    finally:
        engine.dispose()
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from db.models import Participant, Study
    from survey import service

    _, make_session = _sessions(args.db)
    if args.action == "list":
        with make_session() as s:
            rows = s.execute(select(Study.name, Study.status, Study.created_at, func.count(Participant.id),
                                    func.count(Participant.completed_at))
                             .outerjoin(Participant).group_by(Study.id).order_by(Study.id)).all()
        for name, status, created, started, completed in rows:
            print(f"{name}\t{status}\tbuilt {created:%Y-%m-%d %H:%M}\t{started} started, {completed} completed")
        return 0
    study = service.current_study(make_session, args.study or Settings.from_env().study)
    service.set_study_status(make_session, study.id, "closed" if args.action == "close" else "open")
    closed = "closed: new participants are refused politely, those who started can finish"
    print(f"study '{study.name}' is now {closed if args.action == 'close' else 'open'}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from db.backup import backup_sqlite

    r = backup_sqlite(Settings.from_env(args.db).db_url, args.out, overwrite=args.overwrite)
    rows = ", ".join(f"{t} {n}" for t, n in r.tables.items() if t in ("participants", "responses", "trials"))
    print(f"backed up {r.source} -> {r.out} ({r.bytes / 1e6:.1f} MB, {r.seconds:.2f}s, integrity ok; {rows})")
    return 0


def cmd_methods(_: argparse.Namespace) -> int:
    from similarity.methods import METHODS
    from similarity.segmenters import SEGMENTERS

    for reg in (METHODS, SEGMENTERS):
        print(f"{reg.kind}s:")
        for name in reg.names():
            e = reg.entry(name)
            opts = ", ".join(f"{k}={v!r}" for k, v in e.defaults.items()) or "no options"
            status = reg.status(name)
            print(f"  {name:<14}{e.description}\n  {'':<14}options: {opts}\n  {'':<14}weights: {e.weights}"
                  + (f"\n  {'':<14}input: {e.preprocessing}" if e.preprocessing else "")
                  + f"\n  {'':<14}status: {status}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lookalike", description="Blinded human evaluation of visual "
                                "product similarity methods.")
    p.add_argument("--offline", action="store_true",
                   help="never download weights (same as LOOKALIKE_OFFLINE=1); missing ones are an error")
    sub = p.add_subparsers(dest="command", required=True)

    def db_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", help="database file path or SQLAlchemy URL (default: $LOOKALIKE_DB or "
                        "./lookalike.db)")

    b = sub.add_parser("build", help="compute every condition's top-k and store blinded grids")
    db_arg(b)
    b.add_argument("--config", help="study TOML file (see survey/example_study.toml); replaces the flags below")
    b.add_argument("--catalog", help="manifest.csv or a folder of category sub-folders")
    b.add_argument("--name", help="study name")
    b.add_argument("--protocols", nargs="+", default=["rating"], choices=["rating", "pairwise", "ranking"])
    b.add_argument("--methods", nargs="+", default=["ssim", "efficientnet"],
                   help="method names, optionally name:key=value,... (see `lookalike methods`)")
    b.add_argument("--segmenters", nargs="+", default=["none", "u2netp"])
    b.add_argument("--references-per-category", type=int, default=3)
    b.add_argument("--reference-filter", nargs="*", default=[], metavar="COLUMN=VALUE",
                   help="only items whose manifest column has this value become references")
    b.add_argument("-k", type=int, default=5)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--trials-per-participant", type=int, default=12)
    b.add_argument("--replace", action="store_true", help="rebuild a study of the same name (deletes its answers)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_build)

    d = sub.add_parser("demo", help="generate the demo catalog, build the demo study, serve the survey")
    db_arg(d)
    d.add_argument("--no-serve", action="store_true", help="stop after the build")
    d.add_argument("--rebuild", action="store_true")
    d.add_argument("--port", type=int, default=8501)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("serve", help="serve the survey")
    db_arg(s)
    s.add_argument("--port", type=int, default=8501)
    s.add_argument("--study", help="study name (default: the most recently built)")
    s.set_defaults(func=cmd_serve)

    r = sub.add_parser("report", help="write an HTML report of the ratings")
    db_arg(r)
    r.add_argument("--study")
    r.add_argument("--out", default="report.html")
    r.add_argument("--n-boot", type=int, default=2000)
    r.add_argument("--json", action="store_true", help="print the statistics as one JSON object on stdout")
    r.add_argument("--max-failed-checks", type=int, default=0, help="exclude participants failing more checks")
    r.add_argument("--keep-failed-checks", action="store_true", help="do not exclude for failed checks")
    r.add_argument("--max-too-fast", type=int, default=None, help="exclude participants with more too-fast answers")
    r.add_argument("--keep-incomplete", action="store_true", help="analyse participants who did not finish")
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=cmd_report)

    x = sub.add_parser("export", help="tidy tables of a study's answers, for R or pandas, with a data dictionary")
    db_arg(x)
    x.add_argument("--study")
    x.add_argument("--out", required=True, help="output folder")
    x.add_argument("--format", choices=["csv", "parquet"], default="csv")
    x.add_argument("--spreadsheet-safe", action="store_true",
                   help="prefix ' to text cells starting with = + - @ (free text opened in Excel cannot run formulas)")
    x.set_defaults(func=cmd_export)

    sm = sub.add_parser("simulate", help="answer a built study with simulated participants (tests, power analysis)")
    db_arg(sm)
    sm.add_argument("--study")
    sm.add_argument("--participants", type=int, required=True)
    sm.add_argument("--seed", type=int, default=0)
    sm.add_argument("--effects", default="", metavar="METHOD/SEGMENTER=VALUE,...",
                    help="true condition effects on a standard-normal scale (unnamed: 0)")
    sm.add_argument("--noise-sd", type=float, default=1.0)
    sm.add_argument("--bias-sd", type=float, default=0.5, help="per-rater rating bias")
    sm.add_argument("--inattentive", type=float, default=0.0, help="share of raters answering at random")
    sm.set_defaults(func=cmd_simulate)

    pw = sub.add_parser("power", help="participants needed to detect given condition differences (simulated "
                        "rating studies on the study's design)")
    db_arg(pw)
    pw.add_argument("--study")
    pw.add_argument("--effects", default="", metavar="METHOD/SEGMENTER=VALUE,...",
                    help="true condition effects on a standard-normal scale (unnamed: 0), as for simulate")
    pw.add_argument("--participants", default="10,20,40", metavar="N,N,...", help="study sizes to try")
    pw.add_argument("--reps", type=int, default=50, help="simulated studies per size")
    pw.add_argument("--alpha", type=float, default=0.05)
    pw.add_argument("--target", type=float, default=0.8, help="power to reach")
    pw.add_argument("--pair", metavar="A,B", help="the pair of conditions to detect (default: the largest true "
                    "effect vs the smallest)")
    pw.add_argument("--noise-sd", type=float, default=1.0)
    pw.add_argument("--bias-sd", type=float, default=0.5, help="per-rater rating bias")
    pw.add_argument("--seed", type=int, default=0)
    pw.add_argument("--json", action="store_true", help="print the result as one JSON object")
    pw.set_defaults(func=cmd_power)

    e = sub.add_parser("evaluate", help="objective retrieval quality against the manifest's group column")
    e.add_argument("--manifest", required=True, help="manifest.csv (or catalog folder) with a group column")
    e.add_argument("--query", default="", metavar="COLUMN=VALUE", help="which items are queries (default: all)")
    e.add_argument("--gallery", default="", metavar="COLUMN=VALUE", help="which items are ranked (default: all)")
    e.add_argument("--methods", nargs="+", default=["ssim", "efficientnet"])
    e.add_argument("--segmenters", nargs="+", default=["none", "u2netp"])
    e.add_argument("--within", choices=["category", "all"], default="category",
                   help="rank within the query's category, or the whole gallery")
    e.add_argument("--json", action="store_true", help='print {"results": [...]} as one JSON object')
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("cache", help="show or free the mask and feature cache ($LOOKALIKE_HOME/cache)")
    c.add_argument("action", nargs="?", choices=["info", "clear"], default="info")
    c.add_argument("--kind", choices=["masks", "features"], help="clear only this kind")
    c.set_defaults(func=cmd_cache)

    w = sub.add_parser("weights", help="list known weights and whether they are present, or download one")
    w.add_argument("action", nargs="?", choices=["list", "download"], default="list")
    w.add_argument("name", nargs="?")
    w.set_defaults(func=cmd_weights)

    dbp = sub.add_parser("db", help="show the database's schema revision, or upgrade it in place (Alembic)")
    dbp.add_argument("action", choices=["upgrade", "current"])
    db_arg(dbp)
    dbp.set_defaults(func=cmd_db)
    stp = sub.add_parser("study", help="list studies, or close / reopen one to new participants")
    stp.add_argument("action", choices=["list", "close", "open"])
    stp.add_argument("--study", help="study name (default: $LOOKALIKE_STUDY, else the most recently built)")
    db_arg(stp)
    stp.set_defaults(func=cmd_study)
    bk = sub.add_parser("backup", help="consistent copy of a live SQLite database (online backup API)")
    bk.add_argument("out", help="file to write the copy to")
    db_arg(bk)
    bk.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    bk.set_defaults(func=cmd_backup)
    m = sub.add_parser("methods", help="list registered methods and segmenters")
    m.set_defaults(func=cmd_methods)
    return p


#: Errors that are the user's to fix (bad input, missing weights, a full study): printed as one
#: line naming the fix, exit status 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = {"db.backup": "BackupError", "db.migrate": "SchemaError", "similarity.catalog": "CatalogError",
               "similarity.registry": "UnknownName", "similarity.weights": "WeightsUnavailable",
               "survey.build": "StudyExists", "survey.config": "ConfigError", "survey.service": "StudyUnavailable",
               "survey.simulate": "SimulationError"}


def _user_errors() -> tuple[type[Exception], ...]:
    """Looked up when an exception arrives: a module that raised one is imported by then, so a
    command imports only what it uses (`lookalike report` never loads torch)."""
    return tuple(getattr(sys.modules[module], name) for module, name in USER_ERRORS.items() if module in sys.modules)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.offline:
        os.environ["LOOKALIKE_OFFLINE"] = "1"
    if args.command in ("build", "demo", "evaluate"):
        from similarity.runtime import tune_for_throughput

        tune_for_throughput()
    try:
        return args.func(args)
    except _user_errors() as exc:
        print(f"lookalike: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
