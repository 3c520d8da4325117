"""Imports flow one way (issue 12): the layered contract in pyproject.toml holds (import-linter), no import cycle
anywhere in the package, lazy and TYPE_CHECKING imports included; the kernel imports only its vocabulary; memory never
imports the runtime or envs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]

KERNEL_SIDE = ("routing", "_loop", "_calls", "_spec", "context", "runtime", "graph", "memory._bound", "memory._memory",
               "memory._pipeline", "memory._state", "memory.routing", "memory.evaluate", "envs.memory_tier",
               "envs.query_routing", "envs.graph_routing", "envs.graph_obs", "evaluation", "replay", "table_routing")
MEMORY = ("_bound", "_memory", "_pipeline", "_state", "_store", "_index", "_text", "_data", "routing", "evaluate")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("agentroute", exclude_type_checking_imports=False, cache_dir=None)


def _ours(name: str) -> bool:
    short = name.removeprefix("agentroute.")
    return any(short == p or short.startswith(p + ".") for p in KERNEL_SIDE)


def _imports(graph: grimp.ImportGraph, module: str) -> set[str]:
    return {m for m in graph.find_modules_directly_imported_by(module) if m.startswith("agentroute")}


def test_no_cycle_runs_through_the_kernel_the_runtime_or_memory(graph: grimp.ImportGraph) -> None:
    mods = sorted(m for m in graph.modules if m.startswith("agentroute"))
    for m in (m for m in mods if _ours(m)):
        for dep in _imports(graph, m):
            if dep.startswith(m + ".") or dep == "agentroute" or m.startswith(dep + "."):
                continue  # a package and its own children
            back = graph.find_shortest_chain(importer=dep, imported=m)
            assert back is None, f"{m} -> {dep} -> ... -> {m}: {back}"


def test_the_kernel_imports_only_its_vocabulary(graph: grimp.ImportGraph) -> None:
    allowed = ("agentroute.routing", "agentroute.budget", "agentroute.errors", "agentroute.records")
    for m in (m for m in graph.modules if m.startswith("agentroute.routing")):
        bad = {d for d in _imports(graph, m) if not d.startswith(allowed) and d != "agentroute"}
        assert not bad, f"{m} imports {bad}"


def test_memory_imports_neither_the_runtime_nor_the_envs(graph: grimp.ImportGraph) -> None:
    forbidden = ("agentroute.runtime", "agentroute._loop", "agentroute.context", "agentroute._calls",
                 "agentroute.graph", "agentroute.envs")
    for m in (f"agentroute.memory.{name}" for name in MEMORY):
        bad = {d for d in _imports(graph, m) if d.startswith(forbidden)}
        assert not bad, f"{m} imports {bad}"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (a package and its own children do not count)."""
    mods = sorted(m for m in graph.modules if m.startswith("agentroute."))
    adj = {m: [d for d in _imports(graph, m) if d != "agentroute" and not d.startswith(m + ".")
               and not m.startswith(d + ".")] for m in mods}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(mods)))
    try:
        for m in mods:
            if m not in index:
                visit(m)
    finally:
        sys.setrecursionlimit(limit)
    return out


def test_no_import_cycle_anywhere(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_the_finder_sees_a_cycle_when_there_is_one() -> None:
    g = grimp.ImportGraph()
    for m in ("agentroute", "agentroute.a", "agentroute.b", "agentroute.c"):
        g.add_module(m)
    g.add_import(importer="agentroute.a", imported="agentroute.b")
    g.add_import(importer="agentroute.b", imported="agentroute.a")
    g.add_import(importer="agentroute.c", imported="agentroute.a")
    assert _cycles(g) == [["agentroute.a", "agentroute.b"]]


def test_the_layered_contract_in_pyproject_holds(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from importlinter.cli import lint_imports

    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO))
    # lint_imports configures logging with dictConfig, whose default disables every logger that exists by then
    # (agentroute.telemetry among them when an earlier test imported it): a later test in this process would get no
    # log records (caplog), depending on which tests ran before. Put each logger's flag back.
    known = [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    disabled = {lg: lg.disabled for lg in known}
    try:
        code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True)
    finally:
        for lg, flag in disabled.items():
            lg.disabled = flag
    assert code == 0, capsys.readouterr().out[-3000:]
