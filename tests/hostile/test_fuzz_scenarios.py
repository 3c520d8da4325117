"""Fuzzing scenario files: arbitrary text, bytes and structures in, only ConfigError out, and no graph reference
calls anything it has not checked to be an AgentGraph factory."""

from __future__ import annotations

from pathlib import Path

import hostile_inputs
import pytest
import yaml
from hostile_inputs import CALLED, scalars, structures, yaml_texts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentroute.envs import ENV_IDS
from agentroute.envs.scenario import Scenario, check_graph_ref, constructor_keywords, load_scenario, resolve_graph
from agentroute.errors import ConfigError
from agentroute.graph import AgentGraph

FUZZ = settings(deadline=None, max_examples=50,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
KEYS = sorted({k for env in ENV_IDS for k in constructor_keywords(env)} | {"env", "options", "train", "description",
                                                                          "algo", "timesteps", "seed", "n_envs"})
TARGETS = [n for n in vars(hostile_inputs) if not n.startswith("_")]
graph_refs = st.one_of(
    st.sampled_from(TARGETS).map(lambda n: f"hostile_inputs:{n}"),
    st.sampled_from(["os:abort", "os:system", "builtins:exit", "subprocess:call", "agentroute.examples:support_graph",
                     "agentroute.graph:AgentGraph", "agentroute.testing:no_network", ":", "a:", ":b", "a.:b",
                     "agentroute.examples:TIERS", "agentroute:__getattr__", "x" * 300]),
    # arbitrary text, kept clear of real modules: a valid reference lands in a namespace that does not exist
    st.text(max_size=30).map(lambda t: f"agentroute_fuzz_missing.{t}" if ":" in t else t),
)


def _write(tmp_path: Path, text: str | bytes) -> Path:
    f = tmp_path / "scenario.yaml"
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text, encoding="utf-8", errors="surrogatepass")
    return f


def _load(f: Path) -> Scenario | None:
    try:
        return load_scenario(f)
    except ConfigError as e:
        assert str(f) in str(e)
        return None


@FUZZ
@given(text=yaml_texts)
def test_scenario_text_raises_only_config_error(tmp_path: Path, text: str) -> None:
    _load(_write(tmp_path, text))


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_scenario_bytes_raise_only_config_error(tmp_path: Path, raw: bytes) -> None:
    _load(_write(tmp_path, raw))


@FUZZ
@given(env=st.sampled_from([*ENV_IDS, "agentroute/Nope-v0"]), options=structures(KEYS), train=structures(KEYS),
       extra=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), scalars, max_size=3))
def test_scenario_structures_raise_only_config_error(tmp_path: Path, env: str, options: object, train: object,
                                                     extra: dict[object, object]) -> None:
    try:
        text = yaml.safe_dump({**extra, "env": env, "options": options, "train": train})
    except (yaml.YAMLError, ValueError, OverflowError):
        return
    sc = _load(_write(tmp_path, text))
    if sc is not None:
        sc.env_kwargs()  # the budget mapping builds


@FUZZ
@given(ref=graph_refs, budget=structures(["usd", "tokens", "steps", "seconds"]))
def test_graph_references_are_checked_before_anything_is_called(tmp_path: Path, ref: str, budget: object) -> None:
    CALLED.clear()
    text = yaml.safe_dump({"env": "agentroute/GraphRouting-v0", "options": {"graph": ref, "budget": budget}})
    sc = _load(_write(tmp_path, text))
    assert CALLED == []  # loading checks, it never calls
    if sc is None or not ref.startswith("hostile_inputs:"):
        return
    assert ref.partition(":")[2] in hostile_inputs.ACCEPTED
    try:
        graph = resolve_graph(ref)
    except ConfigError:
        assert CALLED == ["lying_factory"]  # called because accepted, then refused for what it returned
        return
    assert isinstance(graph, AgentGraph)


@pytest.mark.parametrize("name", TARGETS)
def test_each_kind_of_target_is_accepted_only_when_it_is_a_graph_or_an_annotated_factory(name: str) -> None:
    CALLED.clear()
    try:
        check_graph_ref(f"hostile_inputs:{name}")
        accepted = True
    except ConfigError:
        accepted = False
    assert accepted == (name in hostile_inputs.ACCEPTED)
    assert CALLED == []
