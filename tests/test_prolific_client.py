"""The Prolific client against the fake API (tests/prolific_fake.py): every page read, every
submission status parsed, and each fault: a refused token, a rate limit, server errors, a dropped
connection, the API unreachable."""

from __future__ import annotations

import time

import pytest

from survey.prolific.client import (
    STATUSES,
    ProlificAuthError,
    ProlificClient,
    ProlificError,
    ProlificUnavailable,
    RetryPolicy,
)
from tests.prolific_fake import FakeProlific

STUDY = "60aca280709ee40ec37d4885"


def _client(fake: FakeProlific, token: str | None = None, **retry) -> tuple[ProlificClient, list[float]]:
    slept: list[float] = []
    policy = RetryPolicy(**{"attempts": 4, "backoff_s": 0.5, "sleep": slept.append, **retry})
    return ProlificClient(token or fake.token, fake.url, retry=policy), slept


@pytest.fixture
def fake():
    f = FakeProlific(page_size=2)
    for i, status in enumerate(STATUSES):
        f.add(STUDY, f"pid{i}", status, code="C0DE" if status in ("AWAITING REVIEW", "APPROVED") else None)
    with f.running():
        yield f


def test_every_page_and_every_status_is_read(fake):
    client, slept = _client(fake)
    subs = client.submissions(STUDY)
    assert [s.participant_id for s in subs] == [f"pid{i}" for i in range(len(STATUSES))]
    assert {s.status for s in subs} == set(STATUSES)
    pages = [entry for entry in fake.log if entry[0] == "GET"]
    assert len(pages) == -(-len(STATUSES) // 2) == 5 and slept == []
    assert next(s for s in subs if s.status == "AWAITING REVIEW").study_code == "C0DE"


def test_a_refused_token_is_one_line_naming_prolific_token_and_never_the_token(fake):
    client, _ = _client(fake, token="wrong-token-987")
    with pytest.raises(ProlificAuthError) as exc:
        client.submissions(STUDY)
    message = str(exc.value)
    assert "PROLIFIC_TOKEN" in message and "401" in message and "\n" not in message
    assert "wrong-token-987" not in message and "wrong-token-987" not in repr(client)
    with pytest.raises(ProlificAuthError, match="PROLIFIC_TOKEN is not set"):
        ProlificClient(None, fake.url)


def test_a_rate_limit_waits_the_seconds_retry_after_asks(fake):
    fake.retry_after = "7"
    fake.faults = ["429", "429"]
    client, slept = _client(fake)
    assert len(client.submissions(STUDY)) == len(STATUSES)
    assert slept == [7.0, 7.0] and client.waits == [("429", 7.0), ("429", 7.0)]


def test_a_rate_limit_is_really_waited_out(fake):
    fake.faults = ["429"]  # Retry-After: 1
    client = ProlificClient(fake.token, fake.url, retry=RetryPolicy(attempts=3, backoff_s=0.01))
    t0 = time.monotonic()
    client.submissions(STUDY)
    assert time.monotonic() - t0 >= 1.0


def test_server_errors_and_a_dropped_connection_are_retried_with_growing_waits(fake):
    fake.faults = ["500", "drop", "500"]
    client, slept = _client(fake)
    assert len(client.submissions(STUDY)) == len(STATUSES)
    assert slept == [0.5, 1.0, 2.0]
    assert [c for _, _, c in fake.log[:3]] == [500, "drop", 500]


def test_errors_that_do_not_lift_end_in_one_line_and_nothing_else(fake):
    fake.faults = ["500"] * 4
    client, slept = _client(fake)
    with pytest.raises(ProlificUnavailable, match="after 4 attempts \\(last: 500 server error\\)"):
        client.submissions(STUDY)
    assert slept == [0.5, 1.0, 2.0]  # no wait after the last attempt


def test_an_unreachable_api_is_reported_after_the_retries(fake):
    url = fake.url
    with FakeProlific().running() as other:
        dead = other.url  # a port nothing listens on once this block ends
    client = ProlificClient(fake.token, dead, retry=RetryPolicy(attempts=3, backoff_s=0.01))
    with pytest.raises(ProlificUnavailable, match="no answer \\(ConnectionError\\)"):
        client.submissions(STUDY)
    assert url != dead


def test_an_unknown_study_says_which_setting_to_check(fake):
    client, _ = _client(fake)
    with pytest.raises(ProlificError, match=r"no study nope.*\[prolific\] study_id"):
        client.submissions("nope")


def test_a_transition_answer_is_returned_whatever_its_status(fake):
    client, _ = _client(fake)
    waiting = next(s for s in client.submissions(STUDY) if s.status == "AWAITING REVIEW")
    assert client.transition(waiting.id, {"action": "APPROVE"}).status_code == 200
    assert fake.status_of(waiting.participant_id) == "APPROVED"
    assert client.transition(waiting.id, {"action": "APPROVE"}).ok  # idempotent, as documented
    bad = client.transition(waiting.id, {"action": "REJECT", "message": "short", "rejection_category": "OTHER"})
    assert bad.status_code == 400 and not bad.ok
