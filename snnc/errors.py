"""The one error type snnc raises for bad user input, and helpers that keep its message short.

Every problem a user can cause (a missing file, a malformed HDF5 dataset, an
unknown architecture name...) is raised as :class:`SnncError` with a one-line
message that names the file and the problem. The CLI turns it into
``snnc: error: <message>`` on stderr and exit code 2, never a traceback.

Messages stay short whatever the input: validators that list offending items
(unknown keys, bad edges, unknown layer names) use :func:`list_items`, which
names the first :data:`MAX_LISTED_ITEMS` and counts the rest
(``'a', 'b', 'c'; and 999997 more``); values from a file are shown with
:func:`short_repr`. As a safety net every message longer than
:data:`MAX_MESSAGE_CHARS` is cut, ending in ``… (N characters)``.
"""

from __future__ import annotations

import heapq
import re
import reprlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["MAX_LISTED_ITEMS", "MAX_MESSAGE_CHARS", "PathLike", "SnncError", "list_items", "short_repr"]

PathLike = str | Path

#: Longest error message (characters, path included); longer ones are cut.
MAX_MESSAGE_CHARS = 500
#: How many offending items a message names before it only counts the rest.
MAX_LISTED_ITEMS = 3

_CUT = re.compile(r"… \((\d+) characters\)$")

_repr = reprlib.Repr()
_repr.maxstring = 40
_repr.maxother = 40
_repr.maxlong = 40
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4
_repr.maxlevel = 2


def short_repr(value: Any) -> str:
    """``repr(value)`` abbreviated to a few dozen characters (cost independent of the value's size)."""
    return _repr.repr(value)


def list_items(
    items: Iterable[Any], limit: int = MAX_LISTED_ITEMS, fmt: Callable[[Any], str] = str, sort: bool = False
) -> str:
    """The first ``limit`` items, comma-separated, then ``'; and N more'`` if there are more.

    ``items`` may be any iterable (a generator over a million entries is consumed
    once, only counting past the first ``limit``); each shown item is formatted
    with ``fmt`` and cut to 80 characters. ``sort=True`` shows the smallest items
    (by ``str``) instead of the first, still in linear time.
    """
    if sort:
        pool = list(items)
        items = heapq.nsmallest(limit, pool, key=str) + [None] * max(0, len(pool) - limit)
    shown: list[str] = []
    more = 0
    for item in items:
        if len(shown) < limit:
            text = fmt(item)
            shown.append(text if len(text) <= 80 else text[:77] + "...")
        else:
            more += 1
    out = ", ".join(shown)
    return f"{out}; and {more} more" if more else out


def _bounded(message: str) -> str:
    """``message`` cut to :data:`MAX_MESSAGE_CHARS`, keeping the original length in the ``… (N characters)`` tail."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    total = len(message)
    found = _CUT.search(message)
    if found:  # an already-cut message wrapped again (path prefix): keep the first cut's count
        total = max(total, int(found.group(1)))
    tail = f"… ({total} characters)"
    return message[: MAX_MESSAGE_CHARS - len(tail)].rstrip() + tail


class SnncError(Exception):
    """A user-facing error with a one-line message of at most :data:`MAX_MESSAGE_CHARS` characters."""

    def __init__(self, message: str, path: PathLike | None = None) -> None:
        message = " ".join(str(message).split())  # always one line
        if path is not None:
            message = f"{path}: {message}"
        super().__init__(_bounded(message))
        self.path = None if path is None else str(path)
