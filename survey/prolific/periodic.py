"""The background sync of ``lookalike serve --prolific-sync-minutes N``: one thread in serve's own
process (never in the app processes, so a farm of N processes still syncs once), a sync at start
and then every N minutes. No participant request waits on it: it shares nothing with them but the
database, where a sync is one short transaction.

A sync that fails (token refused, network down) is recorded and printed, and the next one runs on
schedule; an unexpected error prints its traceback and the thread goes on too, since stopping the
survey over a failed reconciliation would hurt the participants it is meant to help.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from survey.prolific.client import ProlificError


class PeriodicSync(threading.Thread):
    """Calls ``sync_once`` (which returns the line to print) now and every ``every_s`` seconds."""

    def __init__(self, sync_once: Callable[[], str], every_s: float) -> None:
        super().__init__(name="prolific-sync", daemon=True)
        if every_s <= 0:
            raise ValueError(f"every_s must be positive, got {every_s}")
        self.sync_once, self.every_s = sync_once, every_s
        self._stop_event = threading.Event()
        self.runs = 0

    def run(self) -> None:
        while True:
            self._once()
            if self._stop_event.wait(self.every_s):
                return

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=60)

    def _once(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        try:
            line = self.sync_once()
        except ProlificError as exc:  # recorded by the sync; the next one runs on schedule
            line = f"sync failed, the study was not changed: {exc}"
        except Exception:  # a bug: its traceback to the log, the survey keeps running
            print(f"[{stamp} UTC] prolific sync: unexpected error", file=sys.stderr, flush=True)
            traceback.print_exc()
            line = "unexpected error (traceback above)"
        self.runs += 1
        print(f"[{stamp} UTC] prolific sync: {' | '.join(line.splitlines())}", flush=True)
