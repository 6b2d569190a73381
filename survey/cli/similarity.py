"""The similarity backend on its own: ``evaluate``, ``methods``, ``weights`` and ``cache``."""

from __future__ import annotations

import argparse
import json
import sys

from similarity.errors import UserError
from survey.settings import Settings

from .common import Subparsers


def register(sub: Subparsers) -> None:
    add_evaluate(sub)
    add_methods(sub)
    add_weights(sub)
    add_cache(sub)


# --- evaluate -----------------------------------------------------------------------------


def add_evaluate(sub: Subparsers) -> None:
    e = sub.add_parser("evaluate", help="objective retrieval quality against the manifest's group column")
    e.add_argument("--manifest", required=True, help="manifest.csv (or catalog folder) with a group column")
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
    e.add_argument("--json", action="store_true", help='print {"results": [...]} as one JSON object')
    e.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from similarity.cache import Cache
    from similarity.catalog import load_catalog
    from similarity.evaluate import evaluate, parse_filter
    from similarity.methods import create_method
    from similarity.runtime import tune_for_throughput
    from similarity.segmenters import create_segmenter
    from survey.config import Component, check_components

    method_specs = [Component.parse(m) for m in args.methods]
    segmenter_specs = [Component.parse(s) for s in args.segmenters]
    check_components(method_specs, segmenter_specs)  # every name and option, before any work
    tune_for_throughput()
    catalog = load_catalog(args.manifest)
    for sk in catalog.skipped:
        print(f"skipped {sk.where}: {sk.reason}", file=sys.stderr)
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
    )
    if args.json:
        print(json.dumps({"results": [r.as_json() for r in results]}))
        return 0
    print(f"{'method':<14}{'segmenter':<11}{'recall@1':>9}{'recall@5':>9}{'mAP':>7}{'queries':>8}{'seconds':>9}")
    for r in results:
        m = r.metrics
        print(
            f"{r.method:<14}{r.segmenter:<11}{m.recall_at_1:>9.3f}{m.recall_at_5:>9.3f}"
            f"{m.mean_average_precision:>7.3f}{m.queries:>8}{r.seconds:>9.1f}"
        )
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
    c = sub.add_parser("cache", help="show or free the mask and feature cache ($LOOKALIKE_HOME/cache)")
    c.add_argument("action", nargs="?", choices=["info", "clear"], default="info")
    c.add_argument("--kind", choices=["masks", "features"], help="clear only this kind")
    c.set_defaults(func=cmd_cache)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def cmd_cache(args: argparse.Namespace, settings: Settings) -> int:
    from similarity.cache import Cache

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
