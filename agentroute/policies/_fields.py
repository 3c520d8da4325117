"""Reading a policy card's fields and arrays as untrusted input: typed getters that name the file and the field.

:class:`Card` wraps a card's JSON object (and each nested object); :class:`Arrays` the arrays of its ``.npz``. Every
getter checks presence, type and range and raises :class:`~agentroute.errors.DataError` naming the file and the
field; :meth:`Card.build` does the same for fields a library object restores itself (a featurizer, an intent model).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from agentroute.errors import ConfigError, DataError

_MISSING: Any = object()
T = TypeVar("T")

if TYPE_CHECKING:
    import numpy as np


class Card(Mapping[str, Any]):
    """A card's fields with typed getters that raise :class:`DataError` naming the file and the field."""

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str = "") -> None:
        if not isinstance(data, Mapping):
            raise DataError(f"{source}: {prefix.rstrip('.') or 'the card'} is not a JSON object", name=prefix or source)
        self._d = data
        self.source = source
        self.prefix = prefix

    def __getitem__(self, key: str) -> Any:
        return self._d[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def error(self, key: str, problem: str, hint: str | None = None) -> DataError:
        """A :class:`DataError` about ``key`` of this card."""
        field = self.prefix + key
        return DataError(f"{self.source}: field {field!r} {problem}", name=field, hint=hint)

    def _get(self, key: str, default: Any) -> Any:
        if key in self._d:
            return self._d[key]
        if default is _MISSING:
            raise self.error(key, "is missing")
        return default

    def text(self, key: str, default: Any = _MISSING, *, choices: tuple[str, ...] | None = None) -> Any:
        """A string field (``default`` when absent; ``choices`` limits it)."""
        v = self._get(key, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, str):
            raise self.error(key, f"must be a string, not {type(v).__name__}")
        if choices is not None and v not in choices:
            raise self.error(key, f"is {v[:80]!r}", hint=f"one of {', '.join(choices)}")
        return v

    def num(self, key: str, default: Any = _MISSING, *, lo: float = -math.inf, hi: float = math.inf,
            finite: bool = True) -> Any:
        """A number in ``[lo, hi]`` (finite unless ``finite=False``; ``"inf"`` is read as infinity then)."""
        v = self._get(key, default)
        if v is default and default is not _MISSING:
            return v
        if not finite and v in ("inf", "Infinity"):
            v = math.inf
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.error(key, f"must be a number, not {type(v).__name__}")
        try:
            f = float(v)
        except OverflowError:
            raise self.error(key, "is too large") from None
        if math.isnan(f) or (finite and math.isinf(f)) or not lo <= f <= hi:
            raise self.error(key, f"is {v!r}", hint=f"a{' finite' if finite else ''} number in [{lo}, {hi}]")
        return f

    def whole(self, key: str, default: Any = _MISSING, *, lo: int = 0, hi: int = 2**31) -> Any:
        """A whole number in ``[lo, hi]``."""
        v = self._get(key, default)
        if v is default and default is not _MISSING:
            return v
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.error(key, f"must be a whole number in [{lo}, {hi}], not {str(v)[:40]}")
        return v

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        """A true/false field."""
        v = self._get(key, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, bool):
            raise self.error(key, f"must be true or false, not {type(v).__name__}")
        return v

    def texts(self, key: str, default: Any = _MISSING, *, unique: bool = False, nonempty: bool = False) -> Any:
        """A list of strings."""
        v = self._get(key, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.error(key, "must be a list of strings")
        if unique and len(set(v)) != len(v):
            raise self.error(key, "has duplicates")
        if nonempty and not v:
            raise self.error(key, "is empty")
        return list(v)

    def nums(self, key: str, default: Any = _MISSING, *, length: int | None = None, lo: float = -math.inf,
             hi: float = math.inf) -> Any:
        """A list of finite numbers in ``[lo, hi]`` (of ``length`` when given)."""
        v = self._get(key, default)
        if v is default and default is not _MISSING:
            return v
        ok = isinstance(v, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        if not ok or any(not math.isfinite(float(x)) or not lo <= float(x) <= hi for x in v):
            raise self.error(key, f"must be a list of finite numbers in [{lo}, {hi}]")
        if length is not None and len(v) != length:
            raise self.error(key, f"has {len(v)} entries, not {length}")
        return [float(x) for x in v]

    def obj(self, key: str, default: Any = _MISSING) -> Any:
        """A nested JSON object, as a :class:`Card` (``default`` when absent or null)."""
        v = self._get(key, default)
        if v is default and default is not _MISSING:
            return v
        if v is None and default is not _MISSING:
            return default
        if not isinstance(v, Mapping):
            raise self.error(key, "must be a JSON object")
        return Card(v, self.source, f"{self.prefix}{key}.")

    def raw(self) -> dict[str, Any]:
        """The plain fields."""
        return dict(self._d)

    def build(self, key: str, make: Callable[[Any], T], default: Any = _MISSING) -> T:
        """``make(value of key)``, any failure of it reported as a :class:`DataError` about ``key``.

        For fields a library object restores itself (a featurizer, an intent model, an observation layout).
        """
        v = self._get(key, default)
        if v is default and default is not _MISSING:
            return v  # type: ignore[no-any-return]
        try:
            return make(v)
        except DataError:
            raise
        except (ConfigError, KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
                RecursionError, UnicodeError, re.error) as e:
            raise self.error(key, f"cannot be restored: {type(e).__name__}: {str(e)[:160]}") from None


class Arrays(Mapping[str, "np.ndarray"]):
    """The arrays of a card: ``get`` checks presence, dimensions and finiteness, naming the file and the array."""

    def __init__(self, data: Mapping[str, np.ndarray], source: str, prefix: str = "") -> None:
        self._d = data
        self.source = source
        self.prefix = prefix

    def __getitem__(self, key: str) -> np.ndarray:
        out: np.ndarray = self.get(key)
        return out

    def __iter__(self) -> Iterator[str]:
        n = len(self.prefix)
        return (k[n:] for k in self._d if k.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def get(self, key: str, default: Any = _MISSING, *, ndim: int | None = None,
            shape: tuple[int | None, ...] | None = None, dtype: Any = None) -> Any:
        """Array ``key`` (``default`` when absent), checked against ``ndim``/``shape`` and cast to ``dtype``."""
        full = self.prefix + key
        a = self._d.get(full)
        if a is None:
            if default is not _MISSING:
                return default
            raise DataError(f"{self.source}: array {full!r} is missing", name=full)
        if shape is not None:
            ndim = len(shape)
        if ndim is not None and a.ndim != ndim:
            raise DataError(f"{self.source}: array {full!r} has {a.ndim} dimensions, not {ndim}", name=full)
        if shape is not None and any(w is not None and s != w for s, w in zip(a.shape, shape, strict=True)):
            raise DataError(f"{self.source}: array {full!r} has shape {a.shape}, not {shape}", name=full)
        if a.dtype.kind == "f" and not __import__("numpy").isfinite(a).all():
            raise DataError(f"{self.source}: array {full!r} holds NaN or infinite values", name=full)
        return a.astype(dtype) if dtype is not None else a

    def sub(self, prefix: str) -> Arrays:
        """The arrays of a nested policy (saved under ``prefix/``)."""
        return Arrays(self._d, self.source, f"{self.prefix}{prefix}/")


__all__ = ["Arrays", "Card"]
