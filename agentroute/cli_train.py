"""``agentroute train``: train a routing policy in a Gymnasium environment and export it for numpy serving.

``--builtin NAME`` trains on the *train* part of the split ``agentroute data split NAME --test-size 0.2 --seed 0``
writes (``--split all`` takes every query), so ``agentroute eval`` on that split's test file scores queries the
policy never saw. ``--graph module:attr`` imports from the working directory, as ``python -m`` would.
Top-level imports stay light (click only): Gymnasium, torch and stable-baselines3 load inside the command.
"""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

_ALGOS = ("ppo", "maskable_ppo")
_REWARDS = ("tradeoff", "budgetmem", "boundary")
_QUERY = "agentroute/QueryRouting-v0"


def _summary(policy: Any, path: str) -> str:
    card = policy.card
    lines = [
        f"saved {path} (+ card {path.rsplit('.', 1)[0]}.json): {card.get('algo')} on {card.get('env')}, "
        f"{card.get('total_timesteps')} steps, seed {card.get('seed')}",
        f"options: {', '.join(policy.options)}",
    ]
    lo, hi = card.get("cost_weight_range", [0.0, 0.0])
    lines.append(f"cost weight λ: {lo:g}" + (f" to {hi:g} (observed)" if hi != lo else "") +
                 f"; cost scale ${card.get('cost_scale_usd', 1.0):.6g}")
    for row in (card.get("metrics") or {}).get("sweep", []):
        lines.append(
            f"  λ={row['cost_weight']:<6g} quality {row['quality']:.3f}  cost ${row['cost_usd']:.6f}/query (train)"
        )
    return "\n".join(lines)


GRAPH = "agentroute/GraphRouting-v0"
EVAL_TASKS = 60
"""Tasks of the graph each policy runs when ``train`` ends, for the figures it prints."""


def _graph_figures(policy: Any, kw: dict[str, Any], lams: list[float], quiet: bool) -> list[str]:
    """The trained graph policy against the baselines on the environment's first tasks (``eval --scenario``)."""
    from agentroute.envs.graph_routing import GraphRoutingEnv
    from agentroute.scenario_eval import BASELINES, evaluate_env, format_rows

    ekw = {k: v for k, v in kw.items() if k not in ("cost_weight", "cost_weight_range", "reward", "reward_kwargs")}
    env = GraphRoutingEnv(**{**ekw, "cost_scale_usd": 1.0})
    try:
        result = evaluate_env(env, {"trained": policy, **{b: b for b in BASELINES}}, cost_weights=lams,
                              tasks=EVAL_TASKS, progress=not quiet)
    finally:
        env.close()
    return ["figures on the first tasks (as `agentroute eval --scenario` reports them):", *format_rows(result)]


_MAPPED = ("table", "builtin", "graph", "cost_weight", "cost_weight_range", "reward")


def _from_scenario(path: str, given: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Command parameters the scenario sets (those not given on the command line), and its other env options."""
    from agentroute.envs.scenario import load_scenario
    from agentroute.errors import ConfigError

    try:
        sc = load_scenario(path)
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--scenario") from None
    merged: dict[str, Any] = {}
    if "env_id" not in given:
        merged["env_id"] = sc.env_id
    for key, value in sc.train.items():
        if key not in given:
            merged[key] = value
    opts = sc.env_kwargs()
    if {"table", "builtin"} & given:  # a table on the command line replaces the scenario's, whichever kind
        opts.pop("table", None)
        opts.pop("builtin", None)
    if {"cost_weight", "cost_weight_range"} & given:
        opts.pop("cost_weight", None)
        opts.pop("cost_weight_range", None)
    for key in _MAPPED:
        if key in opts:
            value = opts.pop(key)
            if key not in given:
                merged[key] = tuple(value) if key == "cost_weight_range" else value
    return merged, opts


def _check_bopo(env_id: str, cost_weight: float | None, reward: str, n_envs: int | None) -> None:
    """``--bopo`` trains on a graph at one λ per USD, with its own reward and one environment."""
    if env_id != GRAPH:
        raise click.UsageError(f"--bopo trains in {GRAPH} only (got --env {env_id})")
    if cost_weight is None:
        raise click.UsageError("--bopo needs --cost-weight (λ per USD; the boundary reward's λ is derived from it)")
    if reward != "tradeoff":
        raise click.UsageError(f"--bopo trains on the boundary reward: drop --reward {reward}")
    if n_envs not in (None, 1):
        raise click.UsageError("--bopo trains in one environment: drop --n-envs")


def register(main: click.Group) -> None:
    """Add ``train`` to the ``agentroute`` command."""

    @main.command("train")
    @click.option("--scenario", type=click.Path(dir_okay=False), default=None,
                  help="A scenario file (YAML: env, options, train; see envs/ in the repository). Options given on "
                       "the command line override the file.")
    @click.option("--env", "env_id", default=_QUERY, show_default=True,
                  help="Environment id: agentroute/QueryRouting-v0, agentroute/GraphRouting-v0, ...")
    @click.option("--algo", type=click.Choice(_ALGOS), default="ppo", show_default=True)
    @click.option("--table", type=click.Path(dir_okay=False), default=None,
                  help="Routing table (.csv/.jsonl/.parquet). QueryRouting routes its queries; GraphRouting runs "
                       "its texts as tasks.")
    @click.option("--builtin", type=click.Choice(("routerbench", "llmrouter", "routellm")), default=None,
                  help="Use a release from the shared data folder instead of --table.")
    @click.option("--split", "split_part", type=click.Choice(("train", "all")), default="train", show_default=True,
                  help="With --builtin: train on the train part of `agentroute data split NAME --test-size 0.2 "
                       "--seed 0` (its test part is held out for `agentroute eval`), or on all the queries.")
    @click.option("--graph", default=None,
                  help="GraphRouting: 'module:attr' of an AgentGraph or a function returning one, imported from the "
                       "working directory (default: the support example).")
    @click.option("--timesteps", type=click.IntRange(min=1), default=50_000, show_default=True)
    @click.option("--out", required=True, type=click.Path(dir_okay=False),
                  help="Policy path: writes POLICY.npz (weights) and POLICY.json (card).")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--cost-weight", type=click.FloatRange(min=0), default=None, help="A fixed price weight λ.")
    @click.option("--cost-weight-range", type=click.FloatRange(min=0), nargs=2, default=None,
                  help="Draw λ per episode from [A, B] and let the policy see it (QueryRouting default: from 0 to "
                       "3x the steepest slope of the options' cost-quality hull; GraphRouting default: 0 1).")
    @click.option("--reward", type=click.Choice(_REWARDS), default="tradeoff", show_default=True)
    @click.option("--n-envs", type=click.IntRange(min=1), default=None,
                  help="Parallel environments (default 8 for QueryRouting, 1 otherwise).")
    @click.option("--bopo", is_flag=True,
                  help="GraphRouting: boundary-guided training (agentroute.bopo.fit_bopo): always-cheapest and "
                       "always-strongest rollouts per task, a cloned warm start, then PPO on the boundary reward. "
                       "Needs --cost-weight (λ per USD); --reward does not apply.")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    @click.pass_context
    def train(ctx: click.Context, scenario: str | None, env_id: str, algo: str, table: str | None,
              builtin: str | None, split_part: str, graph: str | None, timesteps: int,
              out: str, seed: int, cost_weight: float | None, cost_weight_range: tuple[float, float] | None,
              reward: str, n_envs: int | None, bopo: bool, quiet: bool) -> None:
        """Train a routing policy with PPO or MaskablePPO and export it (no pickle; numpy serving)."""
        extra: dict[str, Any] = {}
        if scenario:
            given = {n for n in ctx.params if ctx.get_parameter_source(n) is not ParameterSource.DEFAULT}
            merged, extra = _from_scenario(scenario, given)
            env_id = merged.get("env_id", env_id)
            algo = merged.get("algo", algo)
            timesteps = merged.get("timesteps", timesteps)
            seed = merged.get("seed", seed)
            n_envs = merged.get("n_envs", n_envs)
            table = merged.get("table", table)
            builtin = merged.get("builtin", builtin)
            graph = merged.get("graph", graph)
            cost_weight = merged.get("cost_weight", cost_weight)
            cost_weight_range = merged.get("cost_weight_range", cost_weight_range)
            reward = merged.get("reward", reward)
        if cost_weight is not None and cost_weight_range:
            raise click.UsageError("give --cost-weight or --cost-weight-range, not both")
        if table and builtin:
            raise click.UsageError("give --table or --builtin, not both")
        if bopo:
            _check_bopo(env_id, cost_weight, reward, n_envs)
        weights: float | tuple[float, float] | str = "auto"
        if cost_weight is not None:
            weights = cost_weight
        elif cost_weight_range:
            weights = (cost_weight_range[0], cost_weight_range[1])
        from agentroute._progress import enabled as progress_enabled

        progress = progress_enabled(quiet)
        if graph:
            from agentroute._cli_util import import_object

            import_object(graph, option="--graph")  # the env imports it again, from sys.modules
        train_part: Any = None
        if builtin and split_part == "train":
            from agentroute.data import load_builtin
            from agentroute.data.split import split_table

            train_part = split_table(load_builtin(builtin))[0]
        if env_id == _QUERY:
            if not (table or builtin):
                raise click.UsageError(f"{_QUERY} needs --table (or --builtin)")
            if graph:
                raise click.UsageError("--graph applies to agentroute/GraphRouting-v0 only")
            if extra:
                raise click.UsageError(
                    f"scenario option(s) {', '.join(sorted(extra))} are not used when training on {_QUERY} from the "
                    "command line (it takes table or builtin, cost_weight or cost_weight_range, and reward); "
                    "use agentroute.envs.scenario.load_scenario(...).make() in Python for the others"
                )
            from agentroute.envs.query_routing import resolve_table
            from agentroute.training import fit_query_policy

            tbl = train_part if train_part is not None else resolve_table(table, builtin)
            policy = fit_query_policy(tbl, None, seed=seed, cost_weights=weights, out=out, total_timesteps=timesteps,
                                      algo=algo, reward=reward, n_envs=n_envs or 8, progress=progress)
        else:
            import gymnasium as gym

            import agentroute.envs  # noqa: F401 - registers the ids
            from agentroute.training import fit_env_policy

            if env_id not in gym.registry:
                known = ", ".join(sorted(k for k in gym.registry if k.startswith("agentroute/")))
                raise click.BadParameter(f"unknown environment {env_id!r} (known: {known})", param_hint="--env")
            kw: dict[str, Any] = dict(extra)  # only what was asked for: each environment has its own defaults
            if reward != "tradeoff":
                kw["reward"] = reward
            if cost_weight is not None:
                kw["cost_weight"] = cost_weight
            elif cost_weight_range:
                kw["cost_weight_range"] = tuple(cost_weight_range)
            elif env_id == GRAPH and "cost_weight" not in kw:
                kw["cost_weight_range"] = (0.0, 1.0)
            if graph:
                kw["graph"] = graph
            if table:
                kw["table"] = table
            if train_part is not None:
                kw["table"] = train_part
            elif builtin:
                kw["builtin"] = builtin
            if bopo:
                from agentroute.bopo import fit_bopo

                assert cost_weight is not None  # _check_bopo
                policy = fit_bopo(kw, cost_weight_usd=cost_weight, algo=algo, total_timesteps=timesteps, seed=seed,
                                  out=out)
                rep = policy.card["bopo"]
                click.echo(f"BoPO: {rep['rollouts']} boundary and exploring rollouts, classes {rep['classes']}, "
                           f"clone accuracy {rep['clone_accuracy']:.2f}, boundary λ {rep['boundary_cost_weight']:.4g}")
            else:
                policy = fit_env_policy(env_id, env_kwargs=kw, algo=algo, total_timesteps=timesteps, seed=seed,
                                        out=out, n_envs=n_envs or 1, progress=progress)
        from agentroute.policies.learned import policy_paths

        click.echo(_summary(policy, str(policy_paths(out)[0])))
        if env_id == GRAPH:
            lams = [float(cost_weight)] if cost_weight is not None else \
                [float(x) for x in kw.get("cost_weight_range", (0.0, 1.0))]
            click.echo("\n".join(_graph_figures(policy, kw, sorted(set(lams)), quiet)))


__all__ = ["register"]
