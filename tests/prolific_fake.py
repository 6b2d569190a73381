"""A fake Prolific API on 127.0.0.1, in a thread: the two endpoints Lookalike uses, with the JSON
shapes Prolific documents, and the faults a long study meets.

* ``GET /api/v1/studies/{id}/submissions/?page=N``: ``{"results": [...], "_links": {"self", "next",
  "previous", "last": {"href", "title"}}, "meta": {"count"}}``, ``page_size`` submissions a page,
  ``next.href`` null on the last; each result ``{id, participant_id, status, started_at,
  completed_at, has_siblings, study_code, return_requested}``; an unknown study is a 404.
* ``POST /api/v1/submissions/{id}/transition/``: APPROVE (from AWAITING REVIEW) or REJECT (a
  ``message`` of 100+ characters and a documented ``rejection_category``), else 400; the same
  transition again is accepted and changes nothing (the API is idempotent); the answer is the
  submission as ``GET submissions/{id}/`` describes it.
* ``Authorization: Token <token>`` checked on every request (else 401).
* Faults, queued and each consumed by one request (``"none"``: answered normally): ``"401"``,
  ``"429"`` (with ``Retry-After: retry_after``), ``"500"``, ``"drop"`` (the connection closed
  without an answer).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

CATEGORIES = {
    "TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL", "FAILED_CHECK", "LOW_EFFORT",
    "MALINGERING", "NO_CODE", "BAD_CODE", "NO_DATA", "UNSUPP_DEVICE", "OTHER",
}  # fmt: skip
PREFIX = "/api/v1/"


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A dropped connection is a fault we cause on purpose; print nothing."""


class FakeProlific:
    def __init__(self, token: str = "secret-token-123", *, page_size: int = 2, retry_after: str = "1") -> None:
        self.token, self.page_size, self.retry_after = token, page_size, retry_after
        self.studies: dict[str, list[dict[str, Any]]] = {}
        self.faults: list[str] = []
        self.log: list[tuple[str, str, int | str]] = []  # (method, path, status or "drop")
        self.lock = threading.Lock()
        self._server: _QuietServer | None = None

    # --- the platform's state ---------------------------------------------------------------

    def create(self, study: str) -> None:
        """A study with no submission yet (its list is empty, not a 404)."""
        with self.lock:
            self.studies.setdefault(study, [])

    def add(self, study: str, pid: str, status: str = "ACTIVE", *, code: str | None = None,
            started_at: datetime | None = None, completed_at: datetime | None = None) -> str:  # fmt: skip
        with self.lock:
            subs = self.studies.setdefault(study, [])
            sub = {
                "id": f"sub{sum(map(len, self.studies.values())):021d}",
                "participant_id": pid,
                "status": status,
                "started_at": iso(started_at or datetime.now(UTC)),
                "completed_at": iso(completed_at),
                "has_siblings": False,
                "study_code": code,
                "return_requested": None,
            }
            subs.append(sub)
            return str(sub["id"])

    def set(self, pid: str, status: str, *, completed_at: datetime | None = None, code: str | None = None) -> None:
        """Change the (latest) submission of ``pid``, as the platform would when they return etc."""
        with self.lock:
            sub = [s for subs in self.studies.values() for s in subs if s["participant_id"] == pid][-1]
            sub["status"] = status
            sub["completed_at"] = iso(completed_at or datetime.now(UTC))
            if code is not None:
                sub["study_code"] = code

    def status_of(self, pid: str) -> str:
        with self.lock:
            return str([s for subs in self.studies.values() for s in subs if s["participant_id"] == pid][-1]["status"])

    # --- serving ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{PREFIX}"

    @contextmanager
    def running(self) -> Iterator[FakeProlific]:
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                with fake.lock:
                    fault = fake.faults.pop(0) if fake.faults else None
                path = urlparse(self.path).path
                if fault == "drop":
                    fake.log.append((method, path, "drop"))
                    self.close_connection = True
                    self.connection.close()
                    return
                code, payload, headers = fake._answer(method, self.path, body, self.headers.get("Authorization"), fault)
                fake.log.append((method, path, code))
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _answer(
        self, method: str, raw_path: str, body: dict[str, Any], auth: str | None, fault: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        if fault == "401" or auth != f"Token {self.token}":
            return 401, {"error": {"status": 401, "title": "Authentication failed", "detail": "Invalid token."}}, {}
        if fault == "429":
            return 429, {"error": {"status": 429, "title": "Too many requests"}}, {"Retry-After": self.retry_after}
        if fault == "500":
            return 500, {"error": {"status": 500, "title": "Internal server error"}}, {}
        url = urlparse(raw_path)
        parts = url.path[len(PREFIX) :].strip("/").split("/") if url.path.startswith(PREFIX) else []
        if method == "GET" and len(parts) == 3 and parts[0] == "studies" and parts[2] == "submissions":
            return self._page(parts[1], int(parse_qs(url.query).get("page", ["1"])[0]))
        if method == "POST" and len(parts) == 3 and parts[0] == "submissions" and parts[2] == "transition":
            return self._transition(parts[1], body)
        return 404, {"error": {"status": 404, "title": "Not found", "detail": url.path}}, {}

    def _page(self, study: str, page: int) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            if study not in self.studies:
                return 404, {"error": {"status": 404, "title": "Not found", "detail": f"study {study}"}}, {}
            subs = [dict(s) for s in self.studies[study]]
        last = max(1, -(-len(subs) // self.page_size))
        base = f"{self.url}studies/{study}/submissions/"

        def link(n: int | None, title: str) -> dict[str, Any]:
            return {"href": None if n is None else f"{base}?page={n}", "title": title}

        return (
            200,
            {
                "results": subs[(page - 1) * self.page_size : page * self.page_size],
                "_links": {
                    "self": link(page, "Current"),
                    "next": link(page + 1 if page < last else None, "Next"),
                    "previous": link(page - 1 if page > 1 else None, "Previous"),
                    "last": link(last, "Last"),
                },
                "meta": {"count": len(subs)},
            },
            {},
        )

    def _transition(self, sub_id: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            sub = next((s for subs in self.studies.values() for s in subs if s["id"] == sub_id), None)
            if sub is None:
                return 404, {"error": {"status": 404, "title": "Not found", "detail": f"submission {sub_id}"}}, {}
            action, target = body.get("action"), {"APPROVE": "APPROVED", "REJECT": "REJECTED"}.get(body.get("action"))
            if target is None:
                return 400, {"error": {"status": 400, "title": "Bad request", "detail": f"action {action!r}"}}, {}
            if action == "REJECT" and (
                len(body.get("message") or "") < 100 or body.get("rejection_category") not in CATEGORIES
            ):
                return 400, {"error": {"status": 400, "title": "Bad request", "detail": "message or category"}}, {}
            if sub["status"] not in ("AWAITING REVIEW", target):
                return 400, {"error": {"status": 400, "title": "Bad request", "detail": f"status {sub['status']}"}}, {}
            sub["status"] = target
            return 200, {
                "id": sub["id"], "started_at": sub["started_at"], "status": sub["status"], "study_id": "",
                "completed_at": sub["completed_at"], "entered_code": sub["study_code"],
                "participant": sub["participant_id"],
            }, {}  # fmt: skip
