"""The ``lookalike`` command line: the parser assembly and :func:`main`.

Each command group lives in its own module, its flags beside its handler:

- :mod:`survey.cli.study`: ``build``, ``demo``, ``serve``, ``study list / close / open``
- :mod:`survey.cli.analysis`: ``report``, ``export``, ``simulate``
- :mod:`survey.cli.power`: ``power`` (from given effects or a pilot, with costs)
- :mod:`survey.cli.preregister`: ``preregister``
- :mod:`survey.cli.similarity`: ``evaluate``, ``methods``, ``weights``, ``cache``
- :mod:`survey.cli.database`: ``db current / upgrade``, ``backup``
- :mod:`survey.cli.prolific`: ``prolific sync / review``

Handlers import what they use inside their body, so a command loads only its own
dependencies (``lookalike report`` never loads torch).
"""

from __future__ import annotations

import argparse
import sys

from similarity.errors import UserError
from survey.cli import analysis, database, power, preregister, prolific, similarity, study
from survey.settings import Settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lookalike", description="Blinded human evaluation of visual product similarity methods."
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="never download weights (same as LOOKALIKE_OFFLINE=1); missing ones are an error",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for group in (study, analysis, power, preregister, prolific, similarity, database):
        group.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env(getattr(args, "db", None), offline=args.offline)
    try:
        return args.func(args, settings)
    except UserError as exc:
        # A mistake the user can fix: one line naming it and the fix, exit status 2 (as for
        # argparse's usage errors). Anything else is a bug and keeps its traceback.
        print("lookalike: error: " + " ".join(str(exc).splitlines()), file=sys.stderr)
        return 2
