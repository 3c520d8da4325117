"""``agentroute eval --scenario envs/X.yaml --policy P [P ...] --out DIR``: policies judged on a graph.

Each P (a rule file, a saved policy, a baseline name: ``cheapest``, ``strongest``, ``random``, ``default``, or an
online learner: ``pheromone``, ``bandit``) runs the scenario's tasks through the real runtime
(:func:`agentroute.scenario_eval.evaluate_scenario`). Writes ``DIR/metrics.json`` (per policy under
``policies.<name>``: quality, cost_usd, reward, truncated_rate, violations, paths) and ``DIR/frontier.png``.
``eval_cmd`` dispatches here when ``--scenario`` is given. λ (``--cost-weight``) is per USD. With ``--ray
[--workers N]`` each policy's run at each λ it runs at goes to a Ray worker (one run stays on one worker, in task
order, so online learners learn as they do here); the tasks' budgets are the scenario's own, per task.
"""

from __future__ import annotations

from collections.abc import Sequence

import click


def run(scenario: str, specs: Sequence[str], out: str, *, cost_weights: Sequence[float], tasks: int | None,
        seed: int, quiet: bool, backend: str = "local", workers: int | None = None) -> None:
    """Evaluate ``specs`` on SCENARIO at each λ and write the report (see the module docstring)."""
    from agentroute._cli_util import CliError
    from agentroute.errors import ConfigError
    from agentroute.scenario_eval import evaluate_scenario, format_rows, write_scenario_report

    if not specs:
        raise CliError("give at least one policy: --policy P [P ...] (a rule file, a saved policy, cheapest, "
                       "strongest, random, default, pheromone or bandit)")
    try:
        result = evaluate_scenario(scenario, list(specs), cost_weights=list(cost_weights) or [0.0], tasks=tasks,
                                   seed=seed, progress=not quiet and backend == "local", backend=backend,
                                   workers=workers)
    except ConfigError as e:
        raise CliError(" ".join(str(e).split())) from None
    mpath, png = write_scenario_report(result, out)
    if not quiet:
        for line in format_rows(result):
            click.echo(line)
        click.echo(f"wrote {mpath} and {png}")


__all__ = ["run"]
