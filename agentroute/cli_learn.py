"""Commands for routing tables and table-fitted policies.

``data convert``, ``fit``, ``route``, ``eval`` and ``policy upgrade``.
These names, options and output columns are a stable contract. Top-level imports stay light (click only): the
data stack loads inside each command. Errors a user can fix raise ``click.UsageError`` / ``DataError``.
``--cost-weight`` (λ) is per USD everywhere: quality given up per dollar of cost.
"""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path
from typing import Any

import click

from agentroute import cli_offpolicy, cli_target
from agentroute._cli_util import CliError

_FIT_NAMES = (
    "prior",
    "ensemble",
    "graph",
    "text",
    "knn",
    "linear",
    "mlp",
    "bandit",
    "thompson",
    "random",
    "cheapest",
    "strongest",
    "ppo",
    *cli_offpolicy.FIT_NAMES,
)
_TABLE_FIT_NAMES = tuple(n for n in _FIT_NAMES if n != "ppo" and n not in cli_offpolicy.FIT_NAMES)
"""What ``eval --split --fit`` fits on a table."""


def _echo(quiet: bool, msg: str) -> None:
    if not quiet:
        click.echo(msg)


def _progress(items: list[Any], quiet: bool, desc: str) -> Any:
    from agentroute._progress import bar

    return bar(items, desc=desc, quiet=quiet)


def _read_table(path: str, prices: str | None, drop_incomplete: bool) -> Any:
    from agentroute.data import RoutingTable, apply_prices, load_prices

    table = RoutingTable.read(path, drop_incomplete=drop_incomplete)
    if prices:
        table = apply_prices(table, load_prices(prices))
    return table


@click.group("data")
def data_group() -> None:
    """Routing tables: convert public releases to the canonical long format."""


@data_group.command("convert")
@click.option(
    "--format", "fmt", required=True, type=click.Choice(["routerbench", "llmrouter", "routellm"]), help="Source format."
)
@click.argument("src", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="TABLE: .csv, .jsonl or .parquet.")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False), help="PRICES.json: costs per call/token.")
@click.option("--drop-incomplete", is_flag=True, help="Drop queries lacking an outcome for some option.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def convert_cmd(
    fmt: str, src: tuple[str, ...], out: str, prices: str | None, drop_incomplete: bool, quiet: bool
) -> None:
    """Convert SRC files or folders of a public release into a routing table at --out."""
    from agentroute.data import load_prices
    from agentroute.data.convert import convert

    table = convert(fmt, list(src), prices=load_prices(prices) if prices else None, drop_incomplete=drop_incomplete)
    table.write(out)
    _echo(quiet, f"wrote {out}: {len(table)} queries x {table.n_options} options ({len(table) * table.n_options} rows)")
    for key in ("dropped_incomplete", "contaminated_dropped", "tokens_estimated", "cost_basis"):
        if key in table.meta:
            _echo(quiet, f"  {key.replace('_', ' ')}: {table.meta[key]}")


def _fit_ppo(table: Any, seed: int, cost_weight: float | None, out: str, timesteps: int | None, quiet: bool) -> Any:
    try:
        from agentroute.training import fit_ppo_from_table
    except ImportError as e:
        raise click.UsageError(
            f"--policy ppo needs agentroute.policies.learned and the 'learn' extra ({e}); "
            "install agentroute[learn], or choose another policy"
        ) from None
    kw: dict[str, Any] = {
        "seed": seed,
        "cost_weights": "auto" if cost_weight is None else cost_weight,
        "out": out,
    }
    params = inspect.signature(fit_ppo_from_table).parameters
    if timesteps is not None and "total_timesteps" in params:
        kw["total_timesteps"] = timesteps
    if "progress" in params:
        kw["progress"] = not quiet and sys.stderr.isatty()
    return fit_ppo_from_table(table, None, **kw)


@click.command("fit")
@click.option("--table", "table_path", type=click.Path(exists=True, dir_okay=False), help="TRAIN table.")
@click.option("--logged", default=None,
              help="Fit from logged decisions instead: STORE_URL or EXPORT_FILE (policies q-linear, q-linear-iw).")
@click.option("--policy", "name", required=True, type=click.Choice(_FIT_NAMES), help="Which policy to fit.")
@click.option("--out", required=True, type=click.Path(), help="POLICY: a directory, or NAME.json (+ NAME.npz).")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False), help="PRICES.json for tables without cost.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--cost-weight", type=float, default=None,
              help="Default λ per USD the policy serves with (quality given up per dollar; default: 0.1 per mean "
                   "cost of the table's priciest option). For ppo: the fixed λ per USD it trains at (default: a "
                   "range it observes).")
@click.option("--featurizer", type=click.Choice(["hashing", "embedding", "tfidf"]), default=None,
              help="Query features: hashing (hashed n-grams), embedding (sentence embeddings, the 'embeddings' "
                   "extra) or tfidf (exact word n-gram vocabulary, read by the text router). Default: the policy's "
                   "own (tfidf for text, hashing for the others).")
@click.option("--timesteps", type=int, default=None, help="PPO only: training timesteps.")
@click.option("--drop-incomplete", is_flag=True, help="Drop queries lacking some option's outcome.")
@click.option("--quiet", "-q", is_flag=True)
@cli_target.fit_options
def fit_cmd(
    table_path: str | None,
    logged: str | None,
    name: str,
    out: str,
    prices: str | None,
    seed: int,
    cost_weight: float | None,
    featurizer: str | None,
    timesteps: int | None,
    drop_incomplete: bool,
    quiet: bool,
    target_spend: float | None,
    target_strong_share: float | None,
    strong: str | None,
    calibrate_on: str | None,
    calibrate_categories: bool,
) -> None:
    """Fit policy NAME on the TRAIN routing table (or on --logged decisions) and save it to --out.

    With --target-spend or --target-strong-share its λ is calibrated to that target on the training table (or on
    --calibrate-on TABLE) and saved on its card.
    """
    targeted = target_spend is not None or target_strong_share is not None or calibrate_on is not None
    if targeted and (logged is not None or name in ("ppo", *cli_offpolicy.FIT_NAMES)):
        raise click.UsageError(f"--target-spend / --target-strong-share calibrate a table router, not {name}")
    if targeted and cost_weight is not None:
        raise click.UsageError("--cost-weight and a target both set λ: give one of them")
    if (table_path is None) == (logged is None):
        raise click.UsageError("give --table TRAIN or --logged STORE_URL|EXPORT_FILE (one of them)")
    if logged is not None or name in cli_offpolicy.FIT_NAMES:
        if logged is None or name not in cli_offpolicy.FIT_NAMES:
            raise CliError(f"--policy {name}: --logged fits {' or '.join(cli_offpolicy.FIT_NAMES)}, "
                           "and those only from --logged")
        cli_offpolicy.fit_logged(logged, name, out, cost_weight=cost_weight, quiet=quiet)
        return
    assert table_path is not None
    table = _read_table(table_path, prices, drop_incomplete)
    t0 = time.perf_counter()
    if name == "ppo":
        _fit_ppo(table, seed, cost_weight, out, timesteps, quiet)
        _echo(quiet, f"fitted ppo on {len(table)} queries x {table.n_options} options -> {out}")
        return
    from agentroute.features import make_featurizer
    from agentroute.policies import make_router

    policy: Any = make_router(name, seed=seed, cost_weight=cost_weight)
    if featurizer is not None and policy.uses_features:
        sparse = not policy.dense_features  # the text router reads sparse TF-IDF rows
        if sparse != (featurizer == "tfidf"):
            raise click.UsageError(
                f"--featurizer {featurizer}: the {name} router reads "
                + ("the tfidf featurizer (sparse rows)" if sparse else "dense features (hashing or embedding); "
                   "tfidf is read by the text router"))
        policy.featurizer = make_featurizer(featurizer)
    policy.fit(table)
    calibrated = cli_target.calibrate_fitted(
        policy, table, target_spend=target_spend, target_strong_share=target_strong_share, strong=strong,
        calibrate_on=_read_table(calibrate_on, prices, drop_incomplete) if calibrate_on else None,
        cost_weight=cost_weight, calibrate_categories=calibrate_categories)
    card = policy.save(out)
    metrics = {k: v for k, v in policy.card.get("metrics", {}).items() if isinstance(v, int | float | str)}
    _echo(
        quiet,
        f"fitted {policy.kind} on {len(table)} queries x {table.n_options} options in "
        f"{time.perf_counter() - t0:.1f} s -> {card}",
    )
    if metrics:
        _echo(quiet, "  " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    if calibrated:
        _echo(quiet, calibrated)


def _queries(path: str) -> tuple[list[str], list[str], list[str | None]]:
    """Query ids, texts and categories of a full routing table or a plain query_id,text[,category] file."""
    from agentroute.data.table import _suffix, read_frame
    from agentroute.errors import DataError

    p = Path(path)
    df = read_frame(p, _suffix(p))
    missing = [c for c in ("query_id", "text") if c not in df.columns]
    if missing:
        raise DataError(f"{p}: missing column(s) {missing}", name=missing[0], hint="QUERIES needs query_id,text")
    df = df.drop_duplicates(subset="query_id", keep="first")
    cats: list[str | None] = (
        [None if (c is None or c != c or str(c) == "") else str(c) for c in df["category"]]
        if "category" in df.columns
        else [None] * len(df)
    )
    texts = ["" if t != t else str(t) for t in df["text"]]
    return [str(q) for q in df["query_id"]], texts, cats


@click.command("route")
@click.option("--policy", "policy_path", required=True, type=click.Path(exists=True), help="A fitted POLICY.")
@click.option("--table", "table_path", required=True, type=click.Path(exists=True, dir_okay=False), help="QUERIES.")
@click.option("--cost-weight", type=float, default=None,
              help="λ per USD: quality given up per dollar (default: the policy's own).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="DECISIONS.csv")
@click.option("--quiet", "-q", is_flag=True)
def route_cmd(policy_path: str, table_path: str, cost_weight: float | None, out: str, quiet: bool) -> None:
    """Route every query of QUERIES with POLICY; write query_id, option and prob_<option> columns."""
    import numpy as np
    import pandas as pd

    from agentroute.policies import load_policy

    if cost_weight is not None and not cost_weight >= 0:
        raise click.BadParameter(f"{cost_weight} must be >= 0", param_hint="--cost-weight")
    policy = load_policy(policy_path)
    qids, texts, cats = _queries(table_path)
    if not hasattr(policy, "predict_texts"):
        raise click.UsageError(f"{policy_path}: this policy cannot route a batch of queries")
    idx, probs = policy.predict_texts(texts, cats, cost_weight)
    options = [str(o) for o in policy.options]
    df = pd.DataFrame({"query_id": qids, "option": [options[int(i)] for i in np.asarray(idx)]})
    probs = np.asarray(probs, dtype=np.float64)
    for j, o in enumerate(options):
        df[f"prob_{o}"] = probs[:, j]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    counts = df["option"].value_counts()
    _echo(quiet, f"routed {len(df)} queries -> {out}")
    _echo(quiet, "  " + ", ".join(f"{o}: {n}" for o, n in counts.items()))


@click.command("eval")
@click.option("--table", "table_path", default=None, type=click.Path(exists=True, dir_okay=False), help="TEST table.")
@click.option("--scenario", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Judge policies on a graph scenario instead (envs/*.yaml, GraphRouting-v0): each --policy is a "
                   "rule file, a saved policy, cheapest, strongest, random, default, pheromone or bandit.")
@click.option("--logged", default=None,
              help="Estimate policies off-policy from logged decisions instead: STORE_URL or EXPORT_FILE.")
@click.option("--policy", "policies", multiple=True, help="POLICY (repeatable; more may follow it).")
@click.option("--cost-weight", "cost_weights", multiple=True, type=click.FloatRange(min=0),
              help="With --scenario: λ per USD (repeatable; default 0). With --logged: one λ (default 0).")
@click.option("--tasks", "n_tasks", default=None, type=click.IntRange(min=1),
              help="With --scenario: run only the first N tasks.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="With --scenario: seed of random policies; with --split: seed of the split and the fits; with "
                   "--logged: the bootstrap seed.")
@click.option("--strategy", "strategies", multiple=True,
              help="Evaluate strategies instead: NAME [NAME ...] (acar, acar-N, fanout, llm-router, cache, or an "
                   "option of TABLE) on its recorded answers.")
@click.argument("more", nargs=-1)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="DIR for metrics.json and frontier.png.")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False), help="PRICES.json for tables without cost.")
@click.option("--train", "train_path", type=click.Path(exists=True, dir_okay=False),
              help="With --strategy: the TRAIN table strategies fit their choices on (default: TABLE itself).")
@click.option("--budget", default=None, help="With --strategy: each task's budget in USD (default: none).")
@click.option("--split", type=click.Choice(["random", "by-category", "both"]), default=None,
              help="TABLE is the whole table: split it (random: queries held out in every category; by-category: "
                   "whole categories held out; both: side by side), fit each --fit router on the train part and "
                   "score it on the test part.")
@click.option("--fit", "fit_names", multiple=True, type=click.Choice(_TABLE_FIT_NAMES),
              help="With --split: a router to fit on each train part (repeatable; default: prior and linear).")
@click.option("--test-size", type=float, default=0.2, show_default=True, help="With --split: the test share.")
@click.option("--clip", type=click.FloatRange(min=0, min_open=True), default=50.0, show_default=True,
              help="With --logged: cap on a task's cumulative importance weight.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=1), default=1000, show_default=True,
              help="With --logged: bootstrap resamples for the IPS and SNIPS 95% intervals.")
@click.option("--drop-incomplete", is_flag=True)
@click.option("--ray", "use_ray", is_flag=True,
              help="With --scenario: run each policy (at each λ it runs at) on a Ray worker; the same figures.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With --ray: how many Ray workers (default: one per CPU Ray offers).")
@click.option("--quiet", "-q", is_flag=True)
def eval_cmd(
    table_path: str | None,
    scenario: str | None,
    logged: str | None,
    policies: tuple[str, ...],
    cost_weights: tuple[float, ...],
    n_tasks: int | None,
    seed: int,
    strategies: tuple[str, ...],
    more: tuple[str, ...],
    out: str,
    prices: str | None,
    train_path: str | None,
    budget: str | None,
    split: str | None,
    fit_names: tuple[str, ...],
    test_size: float,
    clip: float,
    n_boot: int,
    drop_incomplete: bool,
    use_ray: bool,
    workers: int | None,
    quiet: bool,
) -> None:
    """Sweep every POLICY over λ on TEST (or --strategy NAMEs, a --scenario graph, or routers fitted on a --split).

    With --logged, estimate each POLICY off-policy from logged decisions instead (DIR/metrics.json only).
    """
    if sum(x is not None for x in (table_path, scenario, logged)) != 1:
        raise click.UsageError("give one of --table TEST, --scenario SCENARIO or --logged STORE_URL|EXPORT_FILE")
    if (use_ray or workers is not None) and not scenario:
        raise CliError("--ray runs graph tasks, so it applies to eval --scenario only: --table, --strategy, --split "
                       "and --logged compute on a table in this process")
    if workers is not None and not use_ray:
        raise CliError("--workers applies with --ray only")
    if logged is not None:
        if strategies or n_tasks is not None or split is not None or fit_names:
            raise click.UsageError("--strategy, --tasks, --split and --fit do not apply to --logged")
        if len(cost_weights) > 1:
            raise click.UsageError("--logged takes one --cost-weight λ")
        cli_offpolicy.eval_logged(logged, list(policies) + list(more), out,
                                  cost_weight=cost_weights[0] if cost_weights else None, clip=clip,
                                  n_boot=n_boot, seed=seed, quiet=quiet)
        return
    if scenario:
        from agentroute import cli_eval_scenario

        if table_path or strategies:
            raise click.UsageError("give --scenario or --table, not both")
        cli_eval_scenario.run(scenario, [*policies, *more], out, cost_weights=cost_weights, tasks=n_tasks,
                              seed=seed, quiet=quiet, backend="ray" if use_ray else "local", workers=workers)
        return
    if split is not None or fit_names:
        from agentroute import cli_eval_split

        splits = cli_eval_split.check(split, policies, more, fit_names)
        if not table_path:
            raise click.UsageError("--split needs --table TABLE (the whole table)")
        if strategies or train_path or budget or cost_weights or n_tasks is not None:
            raise click.UsageError("--split does not go with --strategy, --train, --budget, --cost-weight or --tasks")
        if not 0.0 < test_size < 1.0:
            raise click.BadParameter(f"{test_size} must be in (0, 1)", param_hint="--test-size")
        cli_eval_split.run(_read_table(table_path, prices, drop_incomplete), splits,
                           fit_names or cli_eval_split.DEFAULT_FIT, out, test_size=test_size, seed=seed,
                           echo=lambda m: _echo(quiet, m))
        return
    if cost_weights or n_tasks is not None:
        raise click.UsageError("--cost-weight and --tasks apply to --scenario only")
    assert table_path is not None
    if strategies:
        from agentroute import cli_eval_strategies as strat

        if policies:
            raise click.UsageError("give --policy or --strategy, not both")
        strat.run(table_path, strat.names_of(strategies, more), out, train_path=train_path, budget=budget,
                  prices=prices, drop_incomplete=drop_incomplete, quiet=quiet)
        return
    if train_path or budget:
        raise click.UsageError("--train and --budget apply to --strategy only")
    from agentroute.evaluation import evaluate, write_report
    from agentroute.policies import load_policy

    for p in more:
        if not Path(p).exists():
            raise click.BadParameter(f"Path {p!r} does not exist.", param_hint="'[MORE]...'")
    for p in policies:
        if not Path(p).exists():
            raise click.BadParameter(f"Path {p!r} does not exist.", param_hint="'--policy'")
    paths = list(policies) + list(more)
    if not paths:
        raise click.UsageError("give at least one --policy POLICY")
    table = _read_table(table_path, prices, drop_incomplete)
    loaded: dict[str, Any] = {}
    for p in _progress(paths, quiet, "loading"):
        label = Path(p).stem if Path(p).suffix else Path(p).name
        while label in loaded:
            label += "'"
        loaded[label] = load_policy(p)
    result = evaluate(table, loaded)
    mpath, png = write_report(result, out, title=f"{Path(table_path).name}: {len(table)} queries")
    _echo(quiet, f"zero router AIQ {result['zero_router']['aiq']:.4f}, oracle AIQ {result['oracle']['aiq']:.4f}")
    for label, rec in result["policies"].items():
        extra = f", APGR {rec['apgr']:.3f}" if "apgr" in rec else ""
        gap = rec["gap_closed"]
        _echo(
            quiet,
            f"  {label}: AIQ {rec['aiq']:.4f} (gap closed {gap:.1%}){extra}" if gap is not None else f"  {label}",
        )
    _echo(quiet, f"wrote {mpath} and {png}")


@click.group("policy")
def policy_group() -> None:
    """Saved policies: cards (JSON) and arrays (.npz), one format for every family."""


@policy_group.command("upgrade")
@click.argument("path", type=click.Path(exists=True))
@click.option("--out", type=click.Path(), default=None,
              help="Where to write the upgraded card (default: over PATH's card, arrays beside it).")
@click.option("--quiet", "-q", is_flag=True)
def upgrade_cmd(path: str, out: str | None, quiet: bool) -> None:
    """Rewrite a policy card of an earlier format in the current one (λ converted to per USD)."""
    from agentroute.policies._card import FORMAT, card_paths, read_card, upgrade_file

    before = str(read_card(card_paths(path)[0]).get("format")) if card_paths(path)[0].exists() else "embedded"
    written = upgrade_file(path, out)
    _echo(quiet, f"{path}: {before} -> {FORMAT}; wrote {written}")


def register(main: click.Group) -> None:
    """Add ``data convert``, ``fit``, ``route``, ``eval`` and ``policy upgrade`` to the command line."""
    existing = main.commands.get("data")
    if isinstance(existing, click.Group):
        existing.add_command(convert_cmd)
    else:
        main.add_command(data_group)
    for cmd in (fit_cmd, route_cmd, eval_cmd, policy_group):
        main.add_command(cmd)
