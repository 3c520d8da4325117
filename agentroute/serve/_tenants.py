"""The tenants file: API keys mapped to tenant → team (optional) → key, each level with its own budget.

::

    tenants:
      - name: acme
        budget: {usd: "1.00"}            # the whole tenant, all its teams and keys together
        per_task: {usd: "0.01"}          # every task of this tenant
        teams:
          - name: ml
            budget: {usd: "0.50"}
            keys:
              - {name: ci, key: "sk-...", budget: {usd: "0.10"}}
        keys:                            # keys may also sit on the tenant itself
          - {name: admin, key_sha256: "<64 hex digits>"}

Everything is validated when the file loads, and every mistake raises :class:`~agentroute.errors.ConfigError`
naming ``file:line``: unknown fields, bad budgets, duplicate tenant/team/key names, a key given twice. Keys are kept
only as SHA-256 digests: the plain text is hashed while the file is read and never stored. This module must never
touch a ledger; :mod:`agentroute.serve._levels` turns these levels into ledgers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from agentroute.budget import Budget
from agentroute.errors import ConfigError

LevelKind = Literal["tenant", "team", "key"]
_SHARED_DIMS = ("usd", "tokens", "steps")
_TASK_DIMS = ("usd", "tokens", "steps", "seconds")
_TENANT_FIELDS = ("name", "budget", "per_task", "teams", "keys")
_TEAM_FIELDS = ("name", "budget", "per_task", "keys")
_KEY_FIELDS = ("name", "key", "key_sha256", "budget", "per_task")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def hash_key(api_key: str) -> str:
    """The SHA-256 hex digest under which an API key is kept."""
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Level:
    """One level of a tenant's hierarchy: its shared budget and the per-task limit it imposes."""

    kind: LevelKind
    name: str
    path: str
    """Unique across the file: ``tenant:acme``, ``team:acme/ml``, ``key:acme/ml/ci`` (``key:acme/-/admin``)."""
    budget: Budget
    per_task: Budget
    line: int


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """What an API key resolves to: its tenant, team and key names, and its levels from the key up."""

    tenant: str
    team: str | None
    key: str
    levels: tuple[Level, ...]
    """Key first, then the team (when there is one), then the tenant."""

    @property
    def per_task(self) -> Budget:
        """The tightest per-task limit of every level."""
        return tightest(*(lv.per_task for lv in self.levels))


class Tenants:
    """The loaded tenants file: hashed keys → :class:`KeyEntry`, and every :class:`Level` by path."""

    def __init__(self, entries: dict[str, KeyEntry], levels: dict[str, Level], source: str) -> None:
        self._by_hash = entries
        self.levels = levels
        self.source = source

    def lookup(self, api_key: str | None) -> KeyEntry | None:
        """The entry of ``api_key`` (``None`` when missing or unknown)."""
        if not api_key:
            return None
        # Looked up by digest: timing can tell nothing about a key from its SHA-256 hash.
        return self._by_hash.get(hash_key(api_key))

    def entries(self) -> Iterator[KeyEntry]:
        """Every key's entry (no key material: names and levels only)."""
        return iter(self._by_hash.values())

    def __len__(self) -> int:
        return len(self._by_hash)


def tightest(*budgets: Budget) -> Budget:
    """The element-wise minimum of ``budgets`` (``None`` = unlimited)."""

    def low(values: list[Any]) -> Any:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    return Budget(usd=low([b.usd for b in budgets]), tokens=low([b.tokens for b in budgets]),
                  steps=low([b.steps for b in budgets]), seconds=low([b.seconds for b in budgets]))


# -- loading ----------------------------------------------------------------------------------------------------
class _Reader:
    """Walks the composed YAML nodes so every error can name its line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._loader = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, message: str, name: str | None = None, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{self.source}:{node.start_mark.line + 1}: {message}", name=name, hint=hint)

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, "expected a single value here")
        return self._loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            key = self.scalar(k)
            if not isinstance(key, str) or key not in allowed:
                raise self.fail(k, f"unknown field {key!r} in {what}", name=str(key),
                                hint=f"allowed: {', '.join(allowed)}")
            if key in out:
                raise self.fail(k, f"field {key!r} given twice in {what}", name=key)
            out[key] = (k, v)
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def name(self, fields: dict[str, tuple[yaml.Node, yaml.Node]], node: yaml.Node, what: str) -> str:
        if "name" not in fields:
            raise self.fail(node, f"{what} has no name")
        value = self.scalar(fields["name"][1])
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(fields["name"][1], f"{what} name {value!r} is not valid",
                            hint="letters, digits, '_', '.', '-'; at most 64 characters")
        return value

    def budget(self, fields: dict[str, tuple[yaml.Node, yaml.Node]], field: str, what: str) -> Budget:
        if field not in fields:
            return Budget()
        node = fields[field][1]
        dims = _SHARED_DIMS if field == "budget" else _TASK_DIMS
        if isinstance(node, yaml.MappingNode):
            values = {}
            for k, (_, v) in self.mapping(node, f"{what} {field}", dims).items():
                values[k] = self.scalar(v)
                if values[k] is None or isinstance(values[k], bool) or values[k] == "":
                    raise self.fail(v, f"{what} {field}.{k} must be a number", name=k, hint='e.g. usd: "0.50"')
            try:
                return Budget(**values)
            except ConfigError as e:
                raise self.fail(node, f"{what} {field}: {e}", name=field) from None
        raise self.fail(node, f"{what} {field} must be a mapping of {', '.join(dims)}",
                        hint='e.g. budget: {usd: "1.00", tokens: 100000}')


def load_tenants(path: str | Path) -> Tenants:
    """Read and validate a tenants file (see the module docstring); :class:`ConfigError` names ``file:line``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the tenants file {p}: {e.strerror}", name=str(p)) from None
    return parse_tenants(text, source=str(p))


def parse_tenants(text: str, *, source: str = "<tenants>") -> Tenants:
    """Validate tenants YAML given as text (``source`` names it in errors)."""
    r = _Reader(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if root is None:
        raise ConfigError(f"{source}:1: the tenants file is empty", hint="start with `tenants:` and a list")
    top = r.mapping(root, "the tenants file", ("tenants",))
    if "tenants" not in top:
        raise r.fail(root, "the tenants file has no `tenants:` list")
    entries: dict[str, KeyEntry] = {}
    levels: dict[str, Level] = {}
    tenant_lines: dict[str, int] = {}
    for t_node in r.sequence(top["tenants"][1], "tenants"):
        tf = r.mapping(t_node, "a tenant", _TENANT_FIELDS)
        tname = r.name(tf, t_node, "a tenant")
        if tname in tenant_lines:
            raise r.fail(tf["name"][1], f"tenant {tname!r} is defined twice (first at line {tenant_lines[tname]})",
                         name=tname)
        tenant_lines[tname] = t_node.start_mark.line + 1
        tenant = Level("tenant", tname, f"tenant:{tname}", r.budget(tf, "budget", f"tenant {tname!r}"),
                       r.budget(tf, "per_task", f"tenant {tname!r}"), t_node.start_mark.line + 1)
        levels[tenant.path] = tenant
        key_names: dict[str, int] = {}
        if "keys" in tf:
            for k_node in r.sequence(tf["keys"][1], f"tenant {tname!r} keys"):
                _add_key(r, k_node, (tenant,), tname, None, key_names, entries, levels)
        team_lines: dict[str, int] = {}
        for m_node in r.sequence(tf["teams"][1], f"tenant {tname!r} teams") if "teams" in tf else []:
            mf = r.mapping(m_node, f"a team of tenant {tname!r}", _TEAM_FIELDS)
            mname = r.name(mf, m_node, f"a team of tenant {tname!r}")
            if mname in team_lines:
                raise r.fail(mf["name"][1], f"team {mname!r} of tenant {tname!r} is defined twice (first at line "
                             f"{team_lines[mname]})", name=mname)
            team_lines[mname] = m_node.start_mark.line + 1
            what = f"team {tname}/{mname}"
            team = Level("team", mname, f"team:{tname}/{mname}", r.budget(mf, "budget", what),
                         r.budget(mf, "per_task", what), m_node.start_mark.line + 1)
            levels[team.path] = team
            for k_node in r.sequence(mf["keys"][1], f"{what} keys") if "keys" in mf else []:
                _add_key(r, k_node, (team, tenant), tname, mname, key_names, entries, levels)
    return Tenants(entries, levels, source)


def _add_key(r: _Reader, node: yaml.Node, parents: tuple[Level, ...], tenant: str, team: str | None,
             names: dict[str, int], entries: dict[str, KeyEntry], levels: dict[str, Level]) -> None:
    kf = r.mapping(node, f"a key of tenant {tenant!r}", _KEY_FIELDS)
    kname = r.name(kf, node, f"a key of tenant {tenant!r}")
    if kname in names:  # key names are unique per tenant, so usage and metrics never mix two keys up
        raise r.fail(kf["name"][1], f"key {kname!r} of tenant {tenant!r} is defined twice (first at line "
                     f"{names[kname]})", name=kname)
    names[kname] = node.start_mark.line + 1
    if ("key" in kf) == ("key_sha256" in kf):
        raise r.fail(node, f"key {tenant}/{kname} needs exactly one of `key` or `key_sha256`", name=kname)
    if "key" in kf:
        secret = r.scalar(kf["key"][1])
        if not isinstance(secret, str) or len(secret) < 8:
            raise r.fail(kf["key"][1], f"key {tenant}/{kname}: `key` must be a string of 8 characters or more",
                         name=kname, hint='quote it: key: "sk-..."')
        digest = hash_key(secret)
        del secret
    else:
        digest = r.scalar(kf["key_sha256"][1])
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise r.fail(kf["key_sha256"][1], f"key {tenant}/{kname}: `key_sha256` must be 64 lowercase hex digits",
                         name=kname, hint="python -c 'import hashlib,sys; print(hashlib.sha256(sys.argv[1]"
                         ".encode()).hexdigest())' KEY")
    if digest in entries:
        other = entries[digest]
        raise r.fail(node, f"key {tenant}/{kname} is the same key as {other.tenant}/{other.key}", name=kname,
                     hint="every API key must be unique")
    what = f"key {tenant}/{kname}"
    level = Level("key", kname, f"key:{tenant}/{team or '-'}/{kname}", r.budget(kf, "budget", what),
                  r.budget(kf, "per_task", what), node.start_mark.line + 1)
    levels[level.path] = level
    entries[digest] = KeyEntry(tenant, team, kname, (level, *parents))


__all__ = ["KeyEntry", "Level", "Tenants", "hash_key", "load_tenants", "parse_tenants", "tightest"]
