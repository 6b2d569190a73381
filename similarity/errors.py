"""The base class of every mistake a user can fix.

:class:`UserError` lives here, in the lowest layer, so that ``similarity``, ``db`` and
``survey`` can all derive from it without depending on each other. Its message names what is
wrong and how to fix it; the command line prints it as one line (``lookalike: error: ...``)
and exits 2. Anything that is not a ``UserError`` is a bug and keeps its traceback.

Subclasses keep a built-in base (``ValueError``, ``KeyError``, ...) where callers catch it.

:class:`WeightsUnavailable` lives here too: :mod:`similarity.registry` catches it by name (a
component that cannot run is reported, not raised) and sits below :mod:`similarity.weights`,
which raises it.
"""

from __future__ import annotations


class UserError(Exception):
    """A user-fixable error; the message names what is wrong and the fix."""


class WeightsUnavailable(UserError, RuntimeError):
    """Weights needed by a method or segmenter are not on this machine."""
