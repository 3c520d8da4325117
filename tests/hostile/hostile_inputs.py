"""Strategies and targets shared by the parser fuzz tests of tests/hostile (not a test module)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from agentroute.graph import AgentGraph

if TYPE_CHECKING:
    from agentroute import graph

# ------------------------------------------------------------------ structures

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers().map(lambda i: i * 10**400),  # ints no float can hold
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "1e999", "nan", "inf", "END", "cheapest", "(a+)+$", r"(a)\1", "(", "agent"]),
)


def structures(keys: list[str], leaves: st.SearchStrategy[Any] = scalars, max_leaves: int = 25) -> Any:
    """Nested lists and mappings whose keys are mostly ``keys`` (so the parser gets past its first checks)."""
    key = st.one_of(st.sampled_from(keys), st.text(max_size=8), st.integers(-3, 3))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=5)),
        max_leaves=max_leaves,
    )


yaml_fragments = st.sampled_from([
    "rules:", "- ", "  ", "\n", "when:", "{", "}", "[", "]", ",", ":", "&a ", "*a", "!!python/object:os.system ",
    "!!binary ", "!!int ", "!!float ", "!!timestamp ", "2024-13-45", "'", '"', "\\ud800", "#", "---\n", "...\n",
    "regex: ", "keywords: ", "choose: ", "default: ", "env: ", "options: ", "graph: ", "budget: ", "train: ",
    "9" * 5000, "? ", "|\n", ">\n", "\t", "\x00", "\ufeff", "%YAML 1.1\n", "!<tag:yaml.org,2002:str> ",
])
yaml_texts = st.one_of(st.text(max_size=200), st.lists(yaml_fragments | st.text(max_size=10), max_size=40).map("".join))


# ------------------------------------------------------------------ graph references for scenarios

CALLED: list[str] = []
"""Names of the functions below that were called: a checked reference must call nothing it has not accepted."""

GRAPH = AgentGraph("fuzz-target")
NOT_A_GRAPH = {"graph": "no"}


def graph_factory() -> AgentGraph:
    CALLED.append("graph_factory")
    return AgentGraph("fuzz-factory")


def lying_factory() -> AgentGraph:
    CALLED.append("lying_factory")
    return "not a graph"  # type: ignore[return-value]


def unannotated() -> None:
    CALLED.append("unannotated")


def returns_int() -> int:
    CALLED.append("returns_int")
    return 1


def needs_argument(name: str) -> AgentGraph:
    CALLED.append("needs_argument")
    return AgentGraph(name)


class GraphSubclassMaker:
    def __call__(self) -> AgentGraph:
        CALLED.append("GraphSubclassMaker")
        return AgentGraph("callable-object")


CALLABLE_OBJECT = GraphSubclassMaker()
ACCEPTED = {"GRAPH", "graph_factory", "lying_factory", "declared_factory"}
"""The attributes of this module that ``check_graph_ref`` may accept (``lying_factory`` is refused after its call)."""



def declared_factory() -> graph.AgentGraph:
    """Annotated with a module imported only for type checkers: accepted by name, checked after the call."""
    CALLED.append("declared_factory")
    return AgentGraph("declared")


def misnamed_factory() -> NotAGraph:  # type: ignore[name-defined]  # noqa: F821 - held by no module
    CALLED.append("misnamed_factory")
    return AgentGraph("misnamed")
