"""Imports flow one way around the kernel (issue 12): no cycle through the kernel, the runtime or memory, lazy and
TYPE_CHECKING imports included; the kernel imports only its vocabulary; memory never imports the runtime or envs."""

from __future__ import annotations

import grimp
import pytest

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
