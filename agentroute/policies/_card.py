"""One save format for every policy: a JSON card plus a ``.npz`` of plain arrays, behind one :func:`load_policy`.

A card names its ``family`` (``baseline``, ``cascade``, ``deadline``, ``target``, ``rules``, ``preference``,
``predictive``, ``bandit``, ``learned``, ``pheromone``, ``memory``) and ``kind``; :func:`load_policy` imports the module
that holds that family (and nothing else) and hands the card to the class registered for the kind. Arrays load with
``allow_pickle=False``; nothing is pickled anywhere. Cost weights on a card are per USD (``"cost_unit": "usd"``).

Files are untrusted input: the card and the arrays are read with a size bound, every field is read through
:class:`Card` (which names the file and the field when a value is missing or of the wrong type), and whatever a
malformed card still makes a family trip over is reported as a :class:`~agentroute.errors.DataError` naming the
file. Cards of earlier formats (``agentroute.router/1``, ``agentroute.learned/1``, ``agentroute-memory-policy/1``)
are upgraded in memory (their λ converted to per USD); ``agentroute policy upgrade PATH`` rewrites them on disk.

This module imports no policy family: families import it (to register), it imports them only by name on load.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import random
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from agentroute.errors import ConfigError, DataError
from agentroute.policies._fields import _MISSING, Arrays, Card

FORMAT = "agentroute.policy/2"
MAX_CARD_BYTES = 64 * 2**20
"""The largest card read (a kNN router's card holds its featurizer; 64 MiB is far above any real one)."""
MAX_ARRAY_BYTES = 2 * 2**30
"""The most uncompressed array data read from one ``.npz`` (a zip bomb stops here)."""
MAX_NESTING = 8
"""How deep policies may nest (a fallback's fallback's ...)."""
LEGACY_MEMORY_UNIT_USD = 0.0025
"""What one λ unit of a ``agentroute-memory-policy/1`` card cost: 1,000 context tokens of the default answer model
(gpt-4o, $2.50 per million input tokens). Their λ is divided by it to become per USD."""
UPGRADE_HINT = "rewrite it in the current format with `agentroute policy upgrade PATH`"

FAMILIES: dict[str, str] = {
    "baseline": "agentroute.policies.baselines",
    "cascade": "agentroute.policies.cascade",
    "deadline": "agentroute.policies.deadline",
    "target": "agentroute.policies.target",
    "preference": "agentroute.policies.preference",
    "rules": "agentroute.policies.rules",
    "predictive": "agentroute.policies.predictive",
    "predictive/prior": "agentroute.policies.prior",
    "predictive/ensemble": "agentroute.policies.ensemble",
    "predictive/graph": "agentroute.policies.graph",
    "predictive/text": "agentroute.policies.text",
    "bandit": "agentroute.policies.bandit",
    "explore": "agentroute.policies.explore",
    "learned": "agentroute.policies.learned",
    "logged": "agentroute.policies.logged",
    "pheromone": "agentroute.policies.pheromone",
    "memory": "agentroute.memory.policies",
    "memory/fitted-q": "agentroute.memory.fitted",
}
"""Where each family (or ``family/kind`` living apart) is defined: imported by name when a card is loaded."""

_REGISTRY: dict[tuple[str, str], type[Any]] = {}
_DTYPES = "biuf"  # bool, int, uint, float: the only array kinds a card may hold
T = TypeVar("T")

if TYPE_CHECKING:
    import numpy as np


class Persistent(Protocol):
    """What a saveable policy implements (every family registered with :func:`register`)."""

    family: ClassVar[str]

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The card's family fields and the arrays to save beside it."""
        ...


def register(family: str, *kinds: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: cards of ``family`` and one of ``kinds`` load through ``cls.from_card(card, arrays)``."""

    def deco(cls: type[T]) -> type[T]:
        for k in kinds:
            _REGISTRY[(family, k)] = cls
        return cls

    return deco


# ---------------------------------------------------------------------- files


def card_paths(path: str | Path) -> tuple[Path, Path]:
    """(card .json, arrays .npz) of a policy path.

    ``NAME.json`` / ``NAME.npz`` name both; ``NAME`` with a ``NAME.json`` beside it too; anything else is a
    directory holding ``card.json`` and ``arrays.npz``.
    """
    p = Path(path)
    if p.suffix in (".json", ".npz"):
        return p.with_suffix(".json"), p.with_suffix(".npz")
    if not p.is_dir() and p.with_name(p.name + ".json").exists():
        return p.with_name(p.name + ".json"), p.with_name(p.name + ".npz")
    return p / "card.json", p / "arrays.npz"


def read_card(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, read with a size bound; :class:`DataError` for anything else."""
    try:
        size = path.stat().st_size
        if size > MAX_CARD_BYTES:
            raise DataError(f"{path}: the card is {size} bytes, over the {MAX_CARD_BYTES}-byte limit", name=str(path))
        data = json.loads(path.read_bytes().decode("utf-8"))
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such policy card", name=str(path),
                        hint="fit one with `agentroute fit` or `agentroute memory fit`") from None
    except (OSError, ValueError, RecursionError) as e:  # ValueError covers JSON and UTF-8 errors
        raise DataError(f"{path}: cannot read the policy card: {str(e)[:200]}", name=str(path)) from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a policy card is a JSON object, not {type(data).__name__}", name=str(path))
    return data


def read_arrays(path: Path, *, allow_text: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` (no pickle, bounded size, numeric only but for the names in ``allow_text``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(i.file_size for i in zf.infolist())
        if total > MAX_ARRAY_BYTES:
            raise DataError(f"{path}: {total} bytes of arrays, over the {MAX_ARRAY_BYTES}-byte limit", name=str(path))
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: the policy's arrays are missing", name=str(path)) from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError,
            NotImplementedError, OverflowError, MemoryError) as e:
        raise DataError(f"{path}: cannot read the policy arrays: {str(e)[:200]}", name=str(path)) from None
    for k, a in out.items():
        if a.dtype.kind not in _DTYPES and k not in allow_text:
            raise DataError(f"{path}: array {k!r} has dtype {a.dtype}, not a number type", name=k)
    return out


def save_policy(policy: Any, path: str | Path, *, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``policy``'s card (and its arrays, when it has any) at ``path``; returns the card's path.

    ``path`` is ``NAME.json`` (arrays go to ``NAME.npz``) or a directory (``card.json`` + ``arrays.npz``).
    ``meta`` adds provenance keys to the card. Raises :class:`ConfigError` for a policy that cannot be saved.
    """
    card, arrays = card_of(policy)
    card.update(meta or {})
    card_path, npz_path = card_paths(path)
    card_path.parent.mkdir(parents=True, exist_ok=True)
    card["arrays"] = npz_path.name if arrays else None
    if arrays:
        import numpy as np

        with npz_path.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    text = json.dumps(_finite(card), indent=1, sort_keys=True, allow_nan=False, default=_json_default)
    card_path.write_text(text + "\n", encoding="utf-8")
    return card_path


def card_of(policy: Any, *, depth: int = 0) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(card, arrays)`` of a policy (top-level keys filled in), for :func:`save_policy` and nested policies."""
    if depth > MAX_NESTING:
        raise ConfigError("policies nest too deeply to save", name="fallback")
    to_card = getattr(policy, "to_card", None)
    family = getattr(type(policy), "family", None)
    if to_card is None or family is None:
        raise ConfigError(
            f"cannot save {type(policy).__name__}: it is not an agentroute policy family",
            name=str(getattr(policy, "name", type(policy).__name__)),
            hint="save the policy's own state yourself, or use a built-in family",
        )
    fields, arrays = to_card()
    card = {
        "format": FORMAT,
        "family": family,
        "kind": str(getattr(policy, "kind", family)),
        "name": str(getattr(policy, "name", family)),
        "version": str(getattr(policy, "version", "1")),
        **fields,
    }
    import numpy as np

    return card, {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def nested_card(policy: Any, key: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The card of a nested policy (a fallback, a base); its arrays are added to ``arrays`` under ``key/``."""
    card, sub = card_of(policy, depth=1)
    card.pop("format", None)
    for k, v in sub.items():
        arrays[f"{key}/{k}"] = v
    return card


def load_nested(card: Card, key: str, arrays: Arrays, default: Any = _MISSING) -> Any:
    """Load the nested policy saved under ``key`` (``default`` when the card has none)."""
    sub = card.obj(key, None if default is not _MISSING else _MISSING)
    if sub is None:
        return default
    if len(card.prefix.split(".")) > MAX_NESTING:
        raise card.error(key, "nests too deeply")
    return _from_card(sub, arrays.sub(key))


def np_rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy generator's state, JSON-safe (so a saved policy continues the same random stream)."""
    return dict(rng.bit_generator.state)


def np_rng_from(card: Card, key: str, seed: int | None) -> np.random.Generator:
    """The generator saved under ``key`` (a fresh one from ``seed`` when the card has none)."""
    st = card.obj(key, None)
    import numpy as np

    rng = np.random.default_rng(seed)
    if st is not None:
        try:
            rng.bit_generator.state = st.raw()
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            raise card.error(key, f"is not a random generator state ({str(e)[:80]})") from None
    return rng


def py_rng_state(rng: random.Random) -> list[Any]:
    """A ``random.Random``'s state, JSON-safe."""
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def py_rng_from(card: Card, key: str, seed: int | None) -> random.Random:
    """The ``random.Random`` saved under ``key`` (a fresh one from ``seed`` when the card has none)."""
    st = card.get(key)
    rng = random.Random(seed)
    if st is not None:
        try:
            version, internal, gauss = st
            rng.setstate((int(version), tuple(int(x) for x in internal), gauss if gauss is None else float(gauss)))
        except (TypeError, ValueError, OverflowError) as e:
            raise card.error(key, f"is not a random generator state ({str(e)[:80]})") from None
    return rng


def _finite(o: Any) -> Any:
    """``o`` with every non-finite float written as a string (``"inf"``, ``"-inf"``, ``"nan"``): strict JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, Mapping):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


# ---------------------------------------------------------------------- loading


def _registered(family: str, kind: str) -> Any:
    importlib.import_module(FAMILIES[family])
    return _REGISTRY[(family, kind)]


def _embedded_card(path: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The card an earlier learned policy kept inside its ``.npz`` (``card_json``)."""
    text = arrays.get("card_json")
    if text is None or text.dtype.kind != "U" or text.ndim != 0:
        raise DataError(f"{path}: no policy card beside it or inside it", name=str(path),
                        hint="give the card (.json) of the policy")
    try:
        raw = json.loads(str(text))
    except (ValueError, RecursionError) as e:
        raise DataError(f"{path}: its embedded card is not JSON: {str(e)[:200]}", name=str(path)) from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: its embedded card is not a JSON object", name=str(path))
    raw.setdefault("weights", path.name)
    return raw


def _family_class(card: Card) -> type[Any]:
    family = card.text("family")
    kind = card.text("kind")
    module = FAMILIES.get(f"{family}/{kind}") or FAMILIES.get(family)
    if module is None:
        raise card.error("family", f"is {family[:80]!r}, not a policy family", hint=f"one of {', '.join(_families())}")
    importlib.import_module(module)  # registers the family's kinds
    cls = _REGISTRY.get((family, kind))
    if cls is None:
        known = sorted(k for f, k in _REGISTRY if f == family)
        raise card.error("kind", f"is {kind[:80]!r}: unknown policy kind of family {family!r}",
                         hint=f"known: {', '.join(known)}")
    return cls


def _check_overrides(cls: type[Any], card: Card, overrides: Mapping[str, Any]) -> None:
    """Refuse an override the family does not take (instead of failing inside it)."""
    if not overrides:
        return
    params = inspect.signature(cls.from_card).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = sorted(n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    for k in overrides:
        if k not in takes:
            raise ConfigError(f"a {card.get('family')} policy ({card.source}) takes no {k!r} when loaded",
                              name=k, hint=f"it takes: {', '.join(takes) or 'nothing'}")


def _families() -> list[str]:
    return sorted({f.split("/")[0] for f in FAMILIES})


def _from_card(card: Card, arrays: Arrays, **overrides: Any) -> Any:
    cls = _family_class(card)
    return cls.from_card(card, arrays, **overrides)


_PREFERENCES_KEY = re.compile(rb"^preferences\s*:", re.MULTILINE)


def _is_preference_file(path: Path) -> bool:
    """Whether a YAML file is a preference file (a top-level ``preferences:`` key) rather than a rule file."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 20)
    except (OSError, ValueError):
        return False  # the rule loader reports the unreadable file
    return _PREFERENCES_KEY.search(head) is not None


def load_policy(path: str | Path, **overrides: Any) -> Any:
    """Load any saved agentroute policy: a card (``.json``, with its ``.npz``), a policy directory, or a rule file.

    The card's ``family`` and ``kind`` pick the class; ``overrides`` go to it (``cost_weight`` — λ per USD — for
    the families that have one, ``store`` for pheromone colonies, ``deterministic`` and ``seed`` for learned
    policies). A ``.yaml`` / ``.yml`` path is a rule file (:class:`~agentroute.policies.RulePolicy`), or a preference
    file when it has a top-level ``preferences:`` key (:class:`~agentroute.policies.PreferencePolicy`; it takes an
    ``encoder`` override).
    Raises :class:`DataError` naming the file (and the field) for anything it cannot load.
    """
    p = Path(path)
    if p.suffix in (".yaml", ".yml"):
        if _is_preference_file(p):
            if set(overrides) - {"encoder"}:
                raise ConfigError(f"a preference file takes only an 'encoder' override, got {sorted(overrides)}",
                                  name=sorted(set(overrides) - {"encoder"})[0])
            return _registered("preference", "preference").from_file(p, **overrides)
        if overrides:
            raise ConfigError(f"a rule file takes no overrides, got {sorted(overrides)}", name=sorted(overrides)[0])
        return _registered("rules", "rules").from_file(p)
    card_path, npz_path = card_paths(p)
    if card_path.exists():
        raw = read_card(card_path)
        source = str(card_path)
        arrays_path: Path | None = None
    elif npz_path.exists():  # a learned policy of the earlier format given by its weights: its card is inside
        arrays = read_arrays(npz_path, allow_text=("card_json",))
        raw = _embedded_card(npz_path, arrays)
        source, arrays_path = str(npz_path), npz_path
    else:
        raise DataError(f"{p}: no such policy", name=str(p), hint="fit one with `agentroute fit`")
    raw = upgrade_card(raw, source)
    card = Card(raw, source)
    if card.text("format") != FORMAT:
        raise card.error("format", f"is {card['format'][:80]!r}, not {FORMAT!r}", hint=UPGRADE_HINT)
    cls = _family_class(card)
    _check_overrides(cls, card, overrides)
    if arrays_path is None:
        name = card.text("arrays", None)
        if name is not None and (Path(name).name != name or not name.endswith(".npz")):
            raise card.error("arrays", f"is {name[:80]!r}, not a .npz file name beside the card")
        arrays_path = card_path.with_name(name) if name else None
        arrays = read_arrays(arrays_path, allow_text=("card_json",)) if arrays_path is not None else {}
    try:
        return cls.from_card(card, Arrays(arrays, str(arrays_path or card_path)), **overrides)
    except DataError:
        raise
    except ConfigError as e:
        if str(e).startswith(source):
            raise
        raise DataError(f"{source}: {e}", name=e.name, hint=e.hint) from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, ZeroDivisionError,
            RecursionError, UnicodeError, re.error, MemoryError) as e:  # numpy's LinAlgError is a ValueError
        raise DataError(f"{source}: malformed {card.get('family')} policy card: {type(e).__name__}: {str(e)[:200]}",
                        name=source, hint=UPGRADE_HINT if card.get("upgraded_from") else None) from None


# ---------------------------------------------------------------------- earlier formats


def upgrade_card(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """A card of an earlier format in the current one (λ per USD); current cards come back unchanged."""
    fmt = raw.get("format")
    if fmt == FORMAT:
        return raw
    c = Card(raw, source)
    out = dict(raw)
    if fmt == "agentroute.router/1":
        kind = c.text("kind")
        scale = c.num("cost_scale", lo=0.0)
        if scale <= 0:
            raise c.error("cost_scale", "must be > 0")
        out["family"] = "bandit" if kind in ("linucb", "thompson") else "predictive"
        out["arrays"] = c.text("weights")
        lam = c.num("cost_weight", 0.1, lo=0.0, finite=False)
        out["cost_weight"] = lam / scale  # λ was per cost-scale unit (the table's priciest option's mean cost)
    elif fmt == "agentroute.learned/1":
        out["family"], out["kind"] = "learned", "learned"
        out["arrays"] = c.text("weights")
        if "cost_weight" in raw:  # λ was per cost unit of the training table
            out["cost_weight"] = c.num("cost_weight", lo=0.0, finite=False) / c.num("cost_scale_usd", lo=1e-300)
    elif fmt == "agentroute-memory-policy/1":
        kind = c.text("policy", choices=("rule", "mlp", "ridge", "knn", "fitted-q"))
        out["family"], out["kind"] = "memory", kind
        out["arrays"] = c.text("weights", None)
        if "cost_weight" in raw:
            lam = c.num("cost_weight", lo=0.0)
            unit = c.num("cost_unit_usd", LEGACY_MEMORY_UNIT_USD, lo=1e-12)
            out["cost_weight"] = lam / unit  # λ was per 1,000 context tokens of the answering model
        if kind == "mlp":
            out["layout"] = "out_in"  # torch's (out, in) weights: transposed on load
    else:
        raise DataError(f"{source}: policy format {str(fmt)[:80]!r} is not one agentroute reads", name="format",
                        hint=f"this build reads {FORMAT} and upgrades the formats before it")
    out["format"] = FORMAT
    out["cost_unit"] = "usd"
    out["upgraded_from"] = fmt
    return out


def upgrade_file(path: str | Path, out: str | Path | None = None) -> Path:
    """Rewrite a policy card of an earlier format in the current one (λ per USD); returns the new card's path."""
    policy = load_policy(path)
    return save_policy(policy, out if out is not None else card_paths(path)[0])


__all__ = [
    "FAMILIES",
    "FORMAT",
    "MAX_ARRAY_BYTES",
    "MAX_CARD_BYTES",
    "Arrays",
    "Card",
    "Persistent",
    "card_of",
    "card_paths",
    "load_nested",
    "load_policy",
    "nested_card",
    "np_rng_from",
    "np_rng_state",
    "py_rng_from",
    "py_rng_state",
    "read_arrays",
    "read_card",
    "register",
    "save_policy",
    "upgrade_card",
    "upgrade_file",
]
