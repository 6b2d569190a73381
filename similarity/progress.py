"""Progress bars for the long steps (loading, fetching, segmenting, embedding, searching).

Every bar shows a rate and an ETA; none is drawn when the caller turns progress off or when
stderr is not a terminal (a log file or CI gets no carriage-return spam).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_bar(*, total: int, desc: str, unit: str = "img", enabled: bool = True, initial: int = 0) -> tqdm:
    """A tqdm bar on stderr; ``disable=None`` is tqdm's "only on a terminal"."""
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=None if enabled else True, smoothing=0.1)


def progress_iter(items: Sequence[T], *, desc: str, unit: str = "img", enabled: bool = True) -> Iterator[T]:
    """``items`` with a bar counting them (same rules as :func:`progress_bar`)."""
    with progress_bar(total=len(items), desc=desc, unit=unit, enabled=enabled) as bar:
        for x in items:
            yield x
            bar.update()
