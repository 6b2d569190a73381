"""The one error for a study that cannot be used: none with that id or name, or one that takes no
participants now. It lives in the lowest survey layer, so that the study's own readers
(:mod:`survey.study.export`) raise the same class as the participant service and the analysis above it.
"""

from __future__ import annotations

from similarity.errors import UserError


class StudyUnavailable(UserError, LookupError):
    """No study with that id or name, or a study that is closed or full; the message says which and what to do."""
