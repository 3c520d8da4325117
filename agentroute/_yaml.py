"""Bounded, safe YAML for the configuration files agentroute reads (rule files, scenarios).

It owns three limits that a hostile or broken file must not get past: the size of the text, the nesting depth
(PyYAML's composer recurses once per level, so ``[[[[...`` raised ``RecursionError``), and the number of values
once aliases are expanded (``&a [*a, *a, ...]`` chains, the "billion laughs", cost nothing to load but blow up
whatever walks the result; an alias to a node that contains it makes a structure that refers to itself). Only
PyYAML's safe loader is used: no tag builds a Python object. Every failure is a
:class:`~agentroute.errors.ConfigError` naming the source and, where YAML gives one, the line.

It never decides what a file means; callers check the structure they get back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentroute.errors import ConfigError

MAX_DEPTH = 32
"""The default deepest nesting of lists and mappings (aliases expanded). Rule files and scenarios need about 5."""
MAX_NODES = 100_000
"""The default most values (scalars, lists, mappings) a document may hold once its aliases are expanded."""


def read_text(path: str | Path, *, max_bytes: int, what: str, limit_name: str) -> str:
    """The UTF-8 text of ``path``, refusing files larger than ``max_bytes`` (read at most that much)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise ConfigError(f"cannot read {what} {str(p)!r}: {getattr(e, 'strerror', None) or e}", name=str(p)) from None
    if len(raw) > max_bytes:
        raise ConfigError(f"{p}: {what} is larger than {max_bytes} bytes", name=str(p),
                          hint=f"raise {limit_name} if the file is meant to be this large")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: {what} is not UTF-8 text (byte {e.start})", name=str(p)) from None


def load(text: str, *, source: str, owner: str, max_chars: int, max_depth: int = MAX_DEPTH,
         max_nodes: int = MAX_NODES) -> tuple[Any, Any]:
    """``(data, root_node)`` of one YAML document, with the limits of the module docstring.

    ``root_node`` is the composed node tree (its ``start_mark.line`` gives line numbers), ``None`` for an empty
    document. ``owner`` is the module whose ``MAX_FILE_BYTES`` / ``MAX_DEPTH`` / ``MAX_NODES`` constants the caller
    passed, so that an error says which one to raise.
    """
    import yaml

    if not isinstance(text, str):
        raise ConfigError(f"{source}: YAML text must be a str, got {type(text).__name__}", name=source)
    if len(text) > max_chars:
        raise ConfigError(f"{source}: larger than {max_chars} characters", name=source,
                          hint=f"raise {owner}.MAX_FILE_BYTES if it is meant to be this large")
    loader = None
    try:
        loader = _loader(yaml)(text, source, max_depth, owner)  # the reader refuses control characters here
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_expanded(root, source, owner, max_depth, max_nodes)
        data = loader.construct_document(root)
    except ConfigError:
        raise
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {e}", name=source) from None
    except Exception as e:  # the safe constructor's own failures on odd scalars, see below
        # PyYAML's SafeConstructor raises plain exceptions for some values: ValueError for an int of 5000 digits
        # or the date 2024-13-45, AttributeError for "!!timestamp x", IndexError for "!!int ''". All mean the
        # same thing: this value cannot be read.
        raise ConfigError(f"{source}: a value cannot be read ({type(e).__name__}: {str(e)[:200]})",
                          name=source) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, root


_LOADER: Any = None


def _loader(yaml: Any) -> Any:
    """A SafeLoader whose composer counts nesting as it goes, so it stops long before Python's recursion limit."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER

    class _Bounded(yaml.SafeLoader):  # type: ignore[misc]
        def __init__(self, text: str, source: str, max_depth: int, owner: str) -> None:
            super().__init__(text)
            self._source = source
            self._owner = owner
            self._max_depth = max_depth
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > self._max_depth:
                    mark = self.peek_event().start_mark
                    raise ConfigError(
                        f"{self._source} line {mark.line + 1}: nested deeper than {self._max_depth} levels",
                        name=self._source, hint=f"{self._owner}.MAX_DEPTH is the limit")
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    _LOADER = _Bounded
    return _LOADER


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, tuple):
                out.extend(item)
            else:
                out.append(item)
        return out
    return []


def _check_expanded(root: Any, source: str, owner: str, max_depth: int, max_nodes: int) -> None:
    """Size and depth of the tree with aliases expanded, computed once per node (iteratively: no recursion)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            on_path.discard(key)
            where = f"{source} line {node.start_mark.line + 1}"
            if size[key] > max_nodes:
                raise ConfigError(f"{where}: holds more than {max_nodes} values once its aliases are expanded",
                                  name=source, hint=f"{owner}.MAX_NODES is the limit")
            if depth[key] > max_depth:
                raise ConfigError(f"{where}: nested deeper than {max_depth} levels once its aliases are expanded",
                                  name=source, hint=f"{owner}.MAX_DEPTH is the limit")
            continue
        if key in size:
            continue
        if key in on_path:
            raise ConfigError(f"{source} line {node.start_mark.line + 1}: an alias refers to itself "
                              "(a value that contains itself)", name=source)
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) not in size:
                stack.append((kid, False))
