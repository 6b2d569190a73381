"""commit-msg hook: the subject line is under 72 characters and, when a body follows, a blank
line separates them. Usage: check_commit_message.py MESSAGE_FILE (as git's commit-msg hook)."""

from __future__ import annotations

import sys
from pathlib import Path

MAX_SUBJECT = 71  # "under 72 characters"


def problems(message: str) -> list[str]:
    """What is wrong with a commit message (empty: nothing); comment lines are ignored."""
    lines = [line for line in message.splitlines() if not line.startswith("#")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        return ["the subject line is empty"]
    found = []
    if len(lines[0]) > MAX_SUBJECT:
        found.append(f"the subject line has {len(lines[0])} characters; keep it under 72 and put detail in the body")
    if len(lines) > 1 and lines[1].strip():
        found.append("leave a blank line between the subject and the body")
    return found


if __name__ == "__main__":
    found = problems(Path(sys.argv[1]).read_text(encoding="utf-8"))
    for problem in found:
        print(f"commit message: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
