"""Progress bars that only draw on a terminal.

A progress bar redrawn into a log file or a CI transcript is thousands of carriage-return lines that nobody reads,
so every bar of the command line goes through :func:`bar` (or asks :func:`enabled`): it draws with tqdm only when
the stream it draws on (stderr) is a terminal, tqdm is installed (it comes with the ``learn`` extra), and the
caller was not asked to be quiet. Otherwise the same calls run against a bar that draws nothing. This module never
imports tqdm at import time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any


def enabled(quiet: bool = False, stream: IO[str] | None = None) -> bool:
    """Whether a progress bar should draw: not quiet, ``stream`` (default stderr) is a terminal, tqdm importable."""
    if quiet:
        return False
    out = sys.stderr if stream is None else stream
    try:
        if not out.isatty():
            return False
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class NoBar:
    """The bar used when nothing may draw: the tqdm methods the package calls, doing nothing."""

    def __init__(self, iterable: Iterable[Any] | None = None) -> None:
        self._iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable if self._iterable is not None else ())

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Nothing to draw."""

    def set_description(self, desc: str | None = None) -> None:
        """Nothing to draw."""

    def close(self) -> None:
        """Nothing to close."""


def bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str | None = None,
        unit: str = "it", quiet: bool = False, leave: bool = False) -> Any:
    """A tqdm bar over ``iterable`` (or with ``total``) on a terminal, else a :class:`NoBar` that draws nothing."""
    if not enabled(quiet):
        return NoBar(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)


def task_bar(total: int, enabled: bool) -> Any:
    """``App.batch``'s bar: tqdm (its notebook widget too) whenever asked for and installed, else a :class:`NoBar`."""
    if not enabled:
        return NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the learn extra
        return NoBar()
    return tqdm(total=total, unit="task", dynamic_ncols=True)


__all__ = ["NoBar", "bar", "enabled", "task_bar"]
