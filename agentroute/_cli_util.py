"""What every command module shares: one-line user errors with exit code 2.

Library and database failures become such errors through :func:`friendly`. Only ``click`` is imported here, so
``agentroute --help`` stays fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A problem the user can fix: one line ``error: ...`` on stderr, exit code 2 (whatever the entry point)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        """Print ``error: <message>``, as ``agentroute`` does for every library error."""
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def friendly(error: type[CliError], database: str = "database error") -> Callable[[F], F]:
    """Decorate a command so library errors and SQL errors become ``error`` (one line, exit code 2)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from sqlalchemy.exc import SQLAlchemyError

            from agentroute.errors import AgentRouteError

            try:
                return fn(*args, **kwargs)
            except AgentRouteError as e:
                raise error(str(e)) from None
            except SQLAlchemyError as e:
                first = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
                raise error(f"{database}: {first}") from None

        return wrapper  # type: ignore[return-value]

    return decorate
