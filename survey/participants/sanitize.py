"""Participant input made safe to store: URL parameters and free text.

Text is kept verbatim apart from control characters (it is data, never markup: pages and the
report escape it); lengths are capped so a hostile URL or comment cannot bloat the database.
"""

from __future__ import annotations

import unicodedata
from typing import Any

#: URL parameters recorded with a participant (recruitment platforms); anything else in the URL is dropped.
RECORDED_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "assignmentId", "hitId")
MAX_PARAM_LEN = 200
MAX_COMMENT_LEN = 5000


def plain_text(value: object, limit: int, keep: str = "") -> str:
    """``value`` as text without control characters (NUL cannot even be stored in PostgreSQL),
    except those in ``keep``, cut to ``limit`` characters. Everything else is kept verbatim."""
    text = str(value)
    return "".join(c for c in text[: limit * 2] if c in keep or unicodedata.category(c) != "Cc")[:limit]


def recruitment_params(params: dict[str, Any]) -> dict[str, str]:
    """Only the recruitment parameters, each cut to MAX_PARAM_LEN and stripped; empty ones dropped."""
    clean = {k: plain_text(params[k], MAX_PARAM_LEN).strip() for k in RECORDED_PARAMS if params.get(k)}
    return {k: v for k, v in clean.items() if v}
