"""Prolific: ``prolific sync`` and ``prolific review`` (the API token only from $PROLIFIC_TOKEN)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from survey.cli.common import Subparsers, add_db_flag, open_db
from survey.settings import Settings

if TYPE_CHECKING:
    from survey.prolific.client import ProlificClient


def register(sub: Subparsers) -> None:
    p = sub.add_parser("prolific", help="sync a study with its Prolific submissions, review and approve them")
    actions = p.add_subparsers(dest="action", required=True)
    s = actions.add_parser("sync", help="free the places of those who returned or timed out there; list mismatches")
    _common(s)
    s.set_defaults(func=cmd_sync)
    r = actions.add_parser("review", help="submissions awaiting review with our recommendation; approve or reject")
    _common(r)
    r.add_argument(
        "--too-fast-max", type=int, default=0, metavar="N", help="more too-fast answers than N: review (default 0)"
    )
    r.add_argument("--approve", action="store_true", help="approve every submission recommended for approval")
    r.add_argument("--reject", metavar="PROLIFIC_PID", help="reject this participant's submission (one at a time)")
    r.add_argument("--category", help="the rejection category (with --reject), e.g. FAILED_CHECK")
    r.add_argument("--reason", help="the message to the participant (with --reject; at least 100 characters)")
    r.set_defaults(func=cmd_review)


def _common(p: argparse.ArgumentParser) -> None:
    add_db_flag(p)
    p.add_argument("--study", help="study name (default: $LOOKALIKE_STUDY, else the most recently built)")
    p.add_argument("--prolific-study", metavar="ID", help="the study's id on Prolific (default: [prolific] study_id)")
    p.add_argument("--by", help="who acts, for the record (default: the operating-system user)")


def _client(settings: Settings) -> ProlificClient:
    from survey.prolific.client import ProlificClient

    return ProlificClient(settings.prolific_token, settings.prolific_api)


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    from survey.participants import service
    from survey.prolific.sync import format_sync, run_sync

    make_session = open_db(settings, must_exist=True)
    study = service.current_study(make_session, args.study or settings.study)
    client = _client(settings)
    rec = run_sync(make_session, study.id, client, prolific_study=args.prolific_study, by=args.by)
    print(format_sync(rec))
    return 0


def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    from survey.participants import service
    from survey.prolific import review
    from survey.prolific.client import ProlificError
    from survey.prolific.sync import prolific_study_id

    if args.reject and args.approve:
        raise ProlificError("give --approve or --reject PID, not both: rejections are never part of a batch")
    if args.reject and not (args.category and args.reason):
        raise ProlificError("--reject needs --category (e.g. FAILED_CHECK) and --reason (the message, 100+ characters)")
    body = review.rejection(args.category, args.reason) if args.reject else {"action": "APPROVE"}
    make_session = open_db(settings, must_exist=True)
    study = service.current_study(make_session, args.study or settings.study)
    sid = prolific_study_id(make_session, study.id, args.prolific_study)
    client = _client(settings)
    recs = review.awaiting_review(make_session, study.id, client.submissions(sid), too_fast_max=args.too_fast_max)
    print(format_review_header(study.name, sid))
    print(review.format_review(recs))
    if args.reject:
        chosen = [r for r in recs if r.pid == args.reject]
        if not chosen:
            raise ProlificError(f"--reject {args.reject}: no submission of this PROLIFIC_PID is awaiting review")
    elif args.approve:
        chosen = [r for r in recs if r.recommend == "approve"]
    else:
        return 0
    failed = 0
    for r in chosen:
        answer = review.send(make_session, study.id, client, r, body, by=args.by)
        failed += not answer.ok
        print(f"{body['action'].lower()} {r.pid}: Prolific answered {answer.status_code} {answer.text[:200]}")
    return 1 if failed else 0


def format_review_header(study: str, sid: str) -> str:
    return f"study '{study}', Prolific study {sid}:"
