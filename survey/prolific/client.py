"""The few Prolific API calls Lookalike makes, with the faults a long study meets handled here.

Base URL ``https://api.prolific.com/api/v1/`` (:data:`survey.settings.PROLIFIC_API`; tests point
``$LOOKALIKE_PROLIFIC_API`` at a local fake), header ``Authorization: Token <token>``:

* ``GET studies/{id}/submissions/``: every submission of a study, page after page, following the
  ``_links.next.href`` of each page until it is null;
* ``POST submissions/{id}/transition/``: ``{"action": "APPROVE"}``, or ``{"action": "REJECT",
  "message": ..., "rejection_category": ...}`` (a message of at least 100 characters and one of
  :data:`REJECTION_CATEGORIES`, as the API requires).

Faults: 401/403 raise :class:`ProlificAuthError` naming ``PROLIFIC_TOKEN``; 429 waits the
``Retry-After`` seconds the API asks for, then asks again; 5xx and a dropped or refused connection
are retried with exponential back-off; when the attempts are spent, :class:`ProlificUnavailable`.
Nothing here touches the database: a caller that gets an exception has changed nothing yet.
The token is held by the client only; it is never part of a message, a record or a repr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import requests

from similarity.errors import UserError

#: Every submission status the API documents.
STATUSES = (
    "RESERVED",
    "ACTIVE",
    "TIMED-OUT",
    "AWAITING REVIEW",
    "APPROVED",
    "PARTIALLY APPROVED",
    "RETURNED",
    "REJECTED",
    "SCREENED OUT",
)
#: The rejection categories the transition endpoint accepts.
REJECTION_CATEGORIES = (
    "TOO_QUICKLY",
    "TOO_SLOWLY",
    "FAILED_INSTRUCTIONS",
    "INCOMP_LONGITUDINAL",
    "FAILED_CHECK",
    "LOW_EFFORT",
    "MALINGERING",
    "NO_CODE",
    "BAD_CODE",
    "NO_DATA",
    "UNSUPP_DEVICE",
    "OTHER",
)
MIN_REJECTION_MESSAGE = 100  # characters, as the API requires


class ProlificError(UserError, RuntimeError):
    """Prolific could not be used as asked; the message says what happened and what to do."""


class ProlificAuthError(ProlificError):
    """The token was refused (401/403) or is not set."""


class ProlificUnavailable(ProlificError):
    """No usable answer after every retry: network down, server errors, rate limit not lifting."""


@dataclass(frozen=True)
class Submission:
    """One submission as the list endpoint describes it."""

    id: str
    participant_id: str
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    study_code: str | None

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Submission:
        missing = {"id", "participant_id", "status"} - set(raw)
        if missing:
            raise ProlificError(f"Prolific listed a submission without {', '.join(sorted(missing))}: {raw!r}")
        return cls(
            id=str(raw["id"]),
            participant_id=str(raw["participant_id"]),
            status=str(raw["status"]),
            started_at=_when(raw.get("started_at")),
            completed_at=_when(raw.get("completed_at")),
            study_code=raw.get("study_code"),
        )


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class Answer:
    """What the API answered to a call: its status code and body text."""

    status_code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass
class RetryPolicy:
    """How faults are waited out: ``attempts`` calls at most; 5xx and connection faults wait
    ``backoff_s * 2**n``; 429 waits its ``Retry-After`` (at most ``max_wait_s``)."""

    attempts: int = 5
    backoff_s: float = 1.0
    max_wait_s: float = 120.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


class ProlificClient:
    """Calls to one Prolific API (``base_url``) with one token."""

    def __init__(self, token: str | None, base_url: str, *, retry: RetryPolicy | None = None) -> None:
        if not token:
            raise ProlificAuthError(
                "PROLIFIC_TOKEN is not set: create an API token on Prolific (Settings > API tokens) and "
                "export PROLIFIC_TOKEN=... in the shell that runs lookalike"
            )
        self._token = token
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.retry = retry or RetryPolicy()
        self.waits: list[tuple[str, float]] = []  # (why, seconds) of every wait, for reports and tests

    def __repr__(self) -> str:
        return f"ProlificClient({self.base_url!r})"

    def submissions(self, study_id: str) -> list[Submission]:
        """Every submission of the study, all pages."""
        url: str | None = urljoin(self.base_url, f"studies/{study_id}/submissions/")
        seen: set[str] = set()
        out: list[Submission] = []
        while url is not None:
            if url in seen:
                raise ProlificError(f"Prolific's submission pages loop back to {url}; stopped reading")
            seen.add(url)
            answer = self._call("GET", url)
            if answer.status_code == 404:
                raise ProlificError(
                    f"Prolific has no study {study_id} (404): check [prolific] study_id in the study file"
                )
            page = self._json(answer, url)
            out += [Submission.from_api(r) for r in page.get("results", [])]
            url = _next_page(page, url)
        return out

    def transition(self, submission_id: str, body: dict[str, Any]) -> Answer:
        """POST a transition; the answer whatever its status (the caller records it). Only auth
        and unreachability raise."""
        return self._call("POST", urljoin(self.base_url, f"submissions/{submission_id}/transition/"), body)

    def _json(self, answer: Answer, url: str) -> dict[str, Any]:
        if not answer.ok:
            raise ProlificError(f"Prolific answered {answer.status_code} to GET {url}: {answer.text[:300]}")
        try:
            page = json.loads(answer.text)
        except ValueError:
            raise ProlificError(f"Prolific's answer to GET {url} is not JSON: {answer.text[:200]!r}") from None
        if not isinstance(page, dict):
            raise ProlificError(f"Prolific's answer to GET {url} is not a JSON object: {answer.text[:200]!r}")
        return page

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> Answer:
        """One request, with the faults of the module docstring waited out."""
        policy, last = self.retry, ""
        for attempt in range(policy.attempts):
            try:
                r = requests.request(
                    method,
                    url,
                    json=body,
                    headers={"Authorization": f"Token {self._token}"},
                    timeout=policy.timeout_s,
                )
            except requests.RequestException as exc:  # refused, reset, dropped mid-answer, timed out
                last = f"no answer ({type(exc).__name__})"
                self._wait("connection", policy.backoff_s * 2**attempt, attempt)
                continue
            if r.status_code in (401, 403):
                raise ProlificAuthError(
                    f"Prolific refused PROLIFIC_TOKEN ({r.status_code}): create a new API token on Prolific "
                    "(Settings > API tokens) and export PROLIFIC_TOKEN=..."
                )
            if r.status_code == 429:
                last = "429 Too Many Requests"
                self._wait("429", _retry_after(r.headers.get("Retry-After"), policy), attempt)
                continue
            if r.status_code >= 500:
                last = f"{r.status_code} server error"
                self._wait(str(r.status_code), policy.backoff_s * 2**attempt, attempt)
                continue
            return Answer(r.status_code, r.text)
        raise ProlificUnavailable(
            f"Prolific did not answer {method} {url} after {policy.attempts} attempts (last: {last}); "
            "nothing was changed, try again later"
        )

    def _wait(self, why: str, seconds: float, attempt: int) -> None:
        if attempt + 1 < self.retry.attempts:  # no wait after the last attempt
            self.waits.append((why, seconds))
            self.retry.sleep(seconds)


def _retry_after(header: str | None, policy: RetryPolicy) -> float:
    """Seconds from a ``Retry-After`` header (seconds form); without one, the back-off base."""
    try:
        seconds = float(header) if header is not None else policy.backoff_s
    except ValueError:
        seconds = policy.backoff_s
    return min(max(seconds, 0.0), policy.max_wait_s)


def _next_page(page: dict[str, Any], url: str) -> str | None:
    """The next page's URL from ``_links.next.href`` (relative ones resolved against ``url``)."""
    nxt = (page.get("_links") or {}).get("next") or {}
    href = nxt.get("href") if isinstance(nxt, dict) else None
    return urljoin(url, href) if href else None
