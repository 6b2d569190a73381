"""The similarity backend on its own: ``evaluate``, ``methods``, ``weights`` and ``cache``."""

from __future__ import annotations

import argparse
import json
import sys

from similarity.catalogs.feeds import FEEDS
from similarity.errors import UserError
from survey.cli.common import Subparsers, add_executor_flags, executor_from_flags
from survey.settings import Settings


def register(sub: Subparsers) -> None:
    add_fetch(sub)
    add_evaluate(sub)
    add_methods(sub)
    add_weights(sub)
    add_cache(sub)


# --- fetch --------------------------------------------------------------------------------


def add_fetch(sub: Subparsers) -> None:
    f = sub.add_parser(
        "fetch",
        help="download a catalog's image URLs into the image store ($LOOKALIKE_HOME/images); exit 1 if any failed",
    )
    f.add_argument("--catalog", required=True, help="manifest.csv with an image_url column, or a feed (--feed)")
    f.add_argument("--feed", choices=list(FEEDS), default="manifest")
    f.add_argument("--workers", type=int, default=16, help="downloads at once, all hosts together")
    f.add_argument("--per-host", type=int, default=4, help="downloads at once from one host")
    f.add_argument("--timeout", type=float, default=20.0, help="seconds to connect, and between bytes read")
    f.add_argument("--retries", type=int, default=3, help="retries of timeouts, connection errors, 429 and 5xx")
    f.add_argument("--max-mb", type=float, default=20.0, help="largest image accepted")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_fetch)


def cmd_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from similarity.catalogs.catalog import catalog_rows, image_urls
    from similarity.catalogs.fetch import Fetcher, FetchPolicy, ImageStore

    policy = FetchPolicy(
        workers=args.workers,
        per_host=args.per_host,
        connect_timeout=args.timeout,
        read_timeout=args.timeout,
        retries=args.retries,
        max_bytes=int(args.max_mb * (1 << 20)),
    )
    urls = image_urls(catalog_rows(args.catalog, feed=args.feed)[0])
    if not urls:
        raise UserError(f"{args.catalog}: no image_url values; local files need no fetch (build reads them)")
    store = ImageStore(settings.image_store)
    report = Fetcher(store, policy).fetch(urls, progress=not args.quiet)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    print(f"{len(report.statuses)} URLs in {store.root}: {counts} ({report.fetched} tried now)")
    for st in report.failed:
        print(f"  {st.status:<20}{st.url}  {st.detail}")
    return 1 if report.failed else 0


# --- evaluate -----------------------------------------------------------------------------


def add_evaluate(sub: Subparsers) -> None:
    e = sub.add_parser("evaluate", help="objective retrieval quality against the manifest's group column")
    e.add_argument("--manifest", required=True, help="manifest.csv (or catalog folder) with a group column")
    e.add_argument("--feed", choices=list(FEEDS), default="manifest", help="catalog format")
    e.add_argument("--query", default="", metavar="COLUMN=VALUE", help="which items are queries (default: all)")
    e.add_argument("--gallery", default="", metavar="COLUMN=VALUE", help="which items are ranked (default: all)")
    e.add_argument("--methods", nargs="+", default=["ssim", "efficientnet"])
    e.add_argument("--segmenters", nargs="+", default=["none", "u2netp"])
    e.add_argument(
        "--within",
        choices=["category", "all"],
        default="category",
        help="rank within the query's category, or the whole gallery",
    )
    e.add_argument("--by", metavar="COLUMN", help="also break every condition down by this column (e.g. category)")
    e.add_argument(
        "--compare",
        nargs=2,
        action="append",
        default=[],
        metavar=("A", "B"),
        help="paired difference A minus B with its bootstrap CI; A and B are row numbers or conditions as "
        "printed (METHOD/SEGMENTER); repeatable",
    )
    e.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the queries (default 2000)")
    e.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    add_executor_flags(e)
    e.add_argument(
        "--json",
        action="store_true",
        help='print {"results": [...], "comparisons": [...], "bootstrap": {...}} as one JSON object',
    )
    e.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from similarity.catalogs.catalog import fetch_and_load
    from similarity.catalogs.fetch import ImageStore
    from similarity.evaluation.evaluate import evaluate, parse_filter
    from similarity.evaluation.report import format_report, query_keys, report_json, resolve_compare, summarise
    from similarity.execution.cache import Cache
    from similarity.methods import create_method
    from similarity.runtime import tune_for_throughput
    from similarity.segmenters import create_segmenter
    from survey.study.config import Component, check_components

    method_specs = [Component.parse(m) for m in args.methods]
    segmenter_specs = [Component.parse(s) for s in args.segmenters]
    check_components(method_specs, segmenter_specs)  # every name and option, before any work
    tune_for_throughput()
    if args.resamples < 100:
        raise UserError(f"--resamples {args.resamples} is too few for a percentile interval; use at least 100")
    catalog, _ = fetch_and_load(args.manifest, images=ImageStore(settings.image_store), feed=args.feed)
    for sk in catalog.skipped:
        print(f"skipped {sk.where}: {sk.reason}", file=sys.stderr)
    keys = query_keys(catalog, args.by) if args.by else None
    resolve_compare([f"{m}/{s}" for s in args.segmenters for m in args.methods], args.compare)  # before any work
    executor = executor_from_flags(args)
    methods = [create_method(c.name, offline=settings.offline, **c.options) for c in method_specs]
    segmenters = [create_segmenter(c.name, offline=settings.offline, **c.options) for c in segmenter_specs]
    results = evaluate(
        catalog,
        methods,
        segmenters,
        query_filter=parse_filter(args.query),
        gallery_filter=parse_filter(args.gallery),
        within=args.within,
        cache=Cache(settings.cache_dir),
        progress=not args.json,
        method_labels=args.methods,
        segmenter_labels=args.segmenters,
        executor=executor,
    )
    report = summarise(
        results,
        by=args.by,
        keys=keys,
        compare=[tuple(pair) for pair in args.compare],
        resamples=args.resamples,
        seed=args.seed,
    )
    print(json.dumps(report_json(report)) if args.json else format_report(report))
    return 0


# --- methods ------------------------------------------------------------------------------


def add_methods(sub: Subparsers) -> None:
    m = sub.add_parser("methods", help="list registered methods and segmenters")
    m.set_defaults(func=cmd_methods)


def cmd_methods(_: argparse.Namespace, settings: Settings) -> int:
    from similarity.methods import METHODS
    from similarity.segmenters import SEGMENTERS

    for reg in (METHODS, SEGMENTERS):
        print(f"{reg.kind}s:")
        for name in reg.names():
            e = reg.entry(name)
            opts = ", ".join(f"{k}={v!r}" for k, v in e.defaults.items()) or "no options"
            status = reg.status(name, offline=settings.offline)
            print(
                f"  {name:<14}{e.description}\n  {'':<14}options: {opts}\n  {'':<14}weights: {e.weights}"
                + (f"\n  {'':<14}input: {e.preprocessing}" if e.preprocessing else "")
                + f"\n  {'':<14}status: {status}"
            )
    return 0


# --- weights ------------------------------------------------------------------------------


def add_weights(sub: Subparsers) -> None:
    w = sub.add_parser("weights", help="list known weights and whether they are present, or download one")
    w.add_argument("action", nargs="?", choices=["list", "download"], default="list")
    w.add_argument("name", nargs="?")
    w.set_defaults(func=cmd_weights)


def cmd_weights(args: argparse.Namespace, settings: Settings) -> int:
    from similarity.weights import download, list_weights

    if args.action == "download":
        if not args.name:
            raise UserError(
                "weights download needs the weights' name: lookalike weights download NAME "
                "(`lookalike weights` lists them)"
            )
        print(f"weights ready at {download(args.name, offline=settings.offline)}")
        return 0
    for spec in list_weights():
        status = spec.status(offline=settings.offline)
        where = spec.path() if status == "present" else spec.how_to_get
        print(f"{spec.name:<34}{status:<24}{where}")
    return 0


# --- cache --------------------------------------------------------------------------------


def add_cache(sub: Subparsers) -> None:
    c = sub.add_parser("cache", help="show or free the mask, feature and exported-model cache ($LOOKALIKE_HOME/cache)")
    c.add_argument("action", nargs="?", choices=["info", "clear"], default="info")
    c.add_argument("--kind", choices=["masks", "features", "models"], help="clear only this kind")
    c.set_defaults(func=cmd_cache)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def cmd_cache(args: argparse.Namespace, settings: Settings) -> int:
    from similarity.execution.cache import Cache

    cache = Cache(settings.cache_dir)
    if args.action == "clear":
        print(f"freed {_size(cache.clear(args.kind))} from {cache.root}" + (f" ({args.kind})" if args.kind else ""))
        return 0
    usage = cache.usage()
    print(f"cache: {cache.root}")
    for u in usage:
        print(f"  {u.kind:<9}{u.identity:<60}{u.entries:>8} entries {_size(u.bytes):>10}")
    print(f"  total: {sum(u.entries for u in usage)} entries, {_size(sum(u.bytes for u in usage))}")
    return 0
