"""The first hour of a new user: missing extras, the demo and the next command, data split, --graph, small outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from agentroute._cli_util import INSTALL_HINT, MissingExtra, extra_of, import_object, missing_extra
from agentroute.cli import NEEDS, main, run
from agentroute.data import RoutingTable
from agentroute.data.split import split_by_category, split_table, write_split

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "agentroute"


def _table(n: int = 60, cats: tuple[str, ...] = ("math", "code", "chat", "law")) -> RoutingTable:
    rng = np.random.default_rng(0)
    return RoutingTable(
        query_ids=[f"q{i}" for i in range(n)], texts=[f"question number {i}" for i in range(n)],
        categories=[cats[i % len(cats)] for i in range(n)], options=["small", "large"],
        quality=rng.uniform(size=(n, 2)), cost=np.tile([0.001, 0.01], (n, 1)),
        input_tokens=np.full((n, 2), 10.0), output_tokens=np.full((n, 2), 20.0), meta={"source": "synthetic"},
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTROUTE_DATABASE"))}
    env.update(PYTHONPATH=str(REPO), **extra)
    return env


# --------------------------------------------------------------------------------------------- missing extras

def _invocations(tmp: Path) -> dict[tuple[str, ...], list[str]]:
    """A valid command line for every command that needs an extra (files that must exist, exist)."""
    table = tmp / "t.csv"
    table.write_text("query_id,text,option,quality\nq1,hi,a,1\n", encoding="utf-8")
    pol = tmp / "pol"
    pol.mkdir(exist_ok=True)
    src = tmp / "src"
    src.mkdir(exist_ok=True)
    snap = tmp / "snap.json"
    snap.write_text("{}", encoding="utf-8")
    out = str(tmp / "out")
    return {
        ("train",): ["train", "--table", str(table), "--out", str(tmp / "p.npz")],
        ("data", "convert"): ["data", "convert", "--format", "routerbench", str(src), "--out", str(tmp / "x.csv")],
        ("data", "split"): ["data", "split", str(table), "--out", out],
        ("fit",): ["fit", "--table", str(table), "--policy", "knn", "--out", out],
        ("route",): ["route", "--policy", str(pol), "--table", str(table), "--out", str(tmp / "d.csv")],
        ("eval",): ["eval", "--table", str(table), "--policy", str(pol), "--out", out],
        ("replay",): ["replay", "--table", str(table), "--policy", "random", "--out", str(tmp / "r.csv")],
        ("pheromones", "show"): ["pheromones", "show", "--from", str(snap), "--out", str(tmp / "h.png")],
        ("memory", "eval"): ["memory", "eval", "--policy", "all-high", "--out", out],
        ("memory", "fit"): ["memory", "fit", "--policy", "ppo", "--out", str(tmp / "m.json")],
        ("memory", "frontier"): ["memory", "frontier", "--out", out],
        ("traces", "export"): ["traces", "export", "--format", "parquet", "--out", str(tmp / "d.parquet")],
        ("serve",): ["serve", "myapp:served"],
    }


def test_every_command_that_needs_an_extra_is_checked(tmp_path: Path) -> None:
    assert set(_invocations(tmp_path)) == set(NEEDS)


@pytest.mark.parametrize("path", sorted(NEEDS), ids=" ".join)
def test_a_missing_extra_is_one_line_naming_it_before_any_work(path: tuple[str, ...], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    argv = _invocations(tmp_path)[path]
    spec = NEEDS[path]
    params = {"name": "knn", "fmt": "parquet", "kind": "ppo"}
    modules = spec(params) if callable(spec) else spec
    assert modules, path
    for m in modules:  # hide all of them: the first one checked is named
        monkeypatch.setitem(sys.modules, m, None)
    monkeypatch.setattr(sys, "argv", ["agentroute", *argv])
    with pytest.raises(SystemExit) as exc:
        run()
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    extra = extra_of(modules[0])
    assert f"agentroute {' '.join(path)} needs the '{extra}' extra ({modules[0]} is not installed)" in err
    assert INSTALL_HINT.format(extra=extra) in err
    assert not (tmp_path / "out").exists()  # it stopped before doing any work


def test_the_installed_command_prints_no_traceback_for_a_missing_extra(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['gymnasium'] = None; sys.argv = ['agentroute', 'train', '--builtin', "
            "'routerbench', '--out', 'p.npz']; from agentroute.cli import run; run()")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=_env())
    assert res.returncode == 2
    assert res.stderr == ("error: agentroute train needs the 'learn' extra (gymnasium is not installed): "
                          'pip install -c constraints.txt -e ".[learn]"\n')


def test_an_extra_missing_deeper_down_is_the_same_one_line() -> None:
    err = ModuleNotFoundError("No module named 'matplotlib.pyplot'", name="matplotlib.pyplot")
    found = missing_extra(err)
    assert isinstance(found, MissingExtra) and found.extra == "learn" and found.module == "matplotlib"
    assert missing_extra(ModuleNotFoundError("x", name="mymodule")) is None
    assert extra_of("opentelemetry.exporter.otlp.proto.grpc") == "otlp" and extra_of("opentelemetry.sdk") is None


# ------------------------------------------------------------------------------------------------ data split

def test_split_by_query_is_seeded_complete_and_stratified() -> None:
    t = _table()
    train, test = split_table(t, 0.25, seed=3)
    again, _ = split_table(t, 0.25, seed=3)
    assert train.query_ids == again.query_ids
    assert sorted(train.query_ids + test.query_ids) == sorted(t.query_ids)
    assert not set(train.query_ids) & set(test.query_ids)
    assert {c: test.categories.count(c) for c in set(test.categories)} == {"math": 4, "code": 4, "chat": 4, "law": 4}
    assert train.meta["split"] == {"part": "train", "test_size": 0.25, "seed": 3, "by": "query"}
    assert split_table(t, 0.25, seed=4)[1].query_ids != test.query_ids


def test_split_by_category_holds_out_whole_categories() -> None:
    t = _table(80)
    train, test = split_by_category(t, 0.2, seed=0)
    assert not set(train.categories) & set(test.categories)
    assert len(test) == 20 and test.meta["held_out_categories"] == sorted(set(test.categories))
    with pytest.raises(Exception, match="at least 2"):
        split_by_category(_table(cats=("only",)), 0.2)


def test_data_split_command_writes_what_fit_and_eval_read(tmp_path: Path) -> None:
    t = _table()
    write_split(*split_table(t), tmp_path / "whole", ".csv")
    src = tmp_path / "whole" / "train.csv"
    res = CliRunner().invoke(main, ["data", "split", str(src), "--test-size", "0.25", "--out", str(tmp_path / "s"),
                                    "--format", "jsonl", "--by-category"])
    assert res.exit_code == 0, res.output
    train = RoutingTable.read(tmp_path / "s" / "train.jsonl")
    test = RoutingTable.read(tmp_path / "s" / "test.jsonl")
    assert len(train) + len(test) == 48 and "held-out categories" in res.output
    res = CliRunner().invoke(main, ["data", "split", "nope.csv", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "no table 'nope.csv'" in res.output


def test_a_routing_table_prints_as_one_short_line() -> None:
    text = str(_table(5000))
    assert "\n" not in text and len(text) < 200
    assert text.startswith("RoutingTable(5000 queries x 2 options [small, large], 4 categories") and repr(_table(3))


# ------------------------------------------------------------------------------------------ --graph, progress

def test_import_object_reads_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_first_hour_graphs.py").write_text("graph = 'a graph'\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert import_object("my_first_hour_graphs:graph") == "a graph"
    from agentroute._cli_util import CliError

    with pytest.raises(CliError, match="no module 'nope_nope'"):
        import_object("nope_nope:graph")
    with pytest.raises(CliError, match=r"has no attribute .other. \(it has: graph\)"):
        import_object("my_first_hour_graphs:other")
    with pytest.raises(CliError, match="is not 'module:attribute'"):
        import_object("my_first_hour_graphs")


def test_progress_bars_only_draw_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from agentroute import _progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not _progress.enabled()
    b = _progress.bar(range(3), total=3)
    assert isinstance(b, _progress.NoBar) and list(b) == [0, 1, 2]
    with _progress.bar(total=3) as nb:
        nb.update(1)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    assert _progress.enabled() and not _progress.enabled(quiet=True)


# ------------------------------------------------------------------------------------ slower end-to-end twins

@pytest.mark.slow
def test_demo_with_a_collector_that_is_down_warns_once(tmp_path: Path, dead_port: int) -> None:
    """docs/tracing.md's `OTEL_EXPORTER_OTLP_ENDPOINT=... agentroute demo --tasks 20`, then the next command."""
    env = _env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{dead_port}")
    res = subprocess.run([str(BIN), "demo", "--tasks", "20", "--json", "demo.json"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "no OTLP collector answers" in warnings[0], res.stderr
    last = res.stdout.rstrip().splitlines()
    assert last[-2:] == ["Look at them with:", "  agentroute traces list"]
    names = set(json.loads((tmp_path / "demo.json").read_text())["policies"])
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT")
    listed = subprocess.run([str(BIN), "traces", "list", "-n", "1000", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["policy"] for r in rows} == names and len(rows) == 20 * len(names)
    family = subprocess.run([str(BIN), "traces", "list", "--policy", "fixed", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert {json.loads(line)["policy"] for line in family.stdout.splitlines()} == {"fixed:large"}
    prefix = subprocess.run([str(BIN), "traces", "list", "--policy", "fix", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert prefix.returncode == 0 and prefix.stdout.strip() == ""  # a family is a whole name before ':'


@pytest.mark.slow
def test_train_builtin_trains_on_the_train_split_only(tmp_path: Path, data_dir: Path) -> None:
    env = _env(AGENTROUTE_DATA_DIR=str(data_dir))
    res = subprocess.run([str(BIN), "train", "--env", "agentroute/QueryRouting-v0", "--algo", "ppo", "--builtin",
                          "routerbench", "--timesteps", "256", "--out", "router.npz", "--quiet"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    card = json.loads((tmp_path / "router.json").read_text())
    assert card["table"]["split"] == {"part": "train", "test_size": 0.2, "seed": 0, "by": "query"}
    subprocess.run([str(BIN), "data", "split", "routerbench", "--test-size", "0.2", "--seed", "0", "--out", "split/"],
                   cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    assert card["queries"] == len(RoutingTable.read(tmp_path / "split" / "train.parquet"))
    res = subprocess.run([str(BIN), "eval", "--table", "split/test.parquet", "--policy", "router.npz", "--out",
                          "eval-ppo/"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "eval-ppo" / "metrics.json").exists()


@pytest.mark.slow
def test_train_imports_the_graph_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "mygraphs.py").write_text("from agentroute.examples import support_graph\n\ngraph = support_graph()\n",
                                          encoding="utf-8")
    args = [str(BIN), "train", "--env", "agentroute/GraphRouting-v0", "--cost-weight", "0.2", "--timesteps", "128",
            "--quiet", "--out", "g.npz"]
    res = subprocess.run([*args, "--graph", "mygraphs:graph"], cwd=tmp_path, env=_env(), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "g.npz").exists()
    for spec, msg in (("mygraphz:graph", "no module 'mygraphz'"), ("mygraphs:grph", "has no attribute 'grph'")):
        bad = subprocess.run([*args, "--graph", spec], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                             timeout=600)
        assert bad.returncode == 2 and msg in bad.stderr and "Traceback" not in bad.stderr
        assert bad.stderr.count("\n") == 1


def test_the_heat_map_tells_not_an_option_from_a_share_of_zero(tmp_path: Path) -> None:
    from agentroute.cli_pheromone import draw_heatmap, heat_panels

    edges = [{"task_type": "math", "point": "p1", "prev": "", "option": "a", "tau": 0.9},
             {"task_type": "math", "point": "p1", "prev": "", "option": "b", "tau": 0.01},
             {"task_type": "math", "point": "p2", "prev": "", "option": "c", "tau": 0.3}]
    rows, cols, share, tau = heat_panels({"edges": edges})["math"]
    assert rows == ["p1", "p2"] and cols == ["a", "b", "c"]
    assert np.isnan(share[0][2]) and np.isnan(share[1][0]) and np.isnan(tau[1][1])  # not offered there
    assert share[0][1] < 1e-6 and share[1][2] == 1.0  # offered, and (almost) never chosen: a real share
    assert draw_heatmap(heat_panels({"edges": edges}), str(tmp_path / "h.png")).stat().st_size > 0
