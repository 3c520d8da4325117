"""Commands over logged decisions: ``eval --logged``, ``fit --logged`` and ``promote``.

``eval`` and ``fit`` live in :mod:`agentroute.cli_learn` and hand over here when given ``--logged`` (a store URL or
an export file of ``agentroute traces export``). ``promote`` is registered here. Top-level imports stay light
(click only). A problem the user can fix (an empty log, a log without propensities, a policy naming options the log
lacks, propensities that do not cover the target) is one line on stderr and exit code 2; ``promote`` exits 0 when
the candidate beats the baseline with confidence and 1 when it does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from agentroute._cli_util import CliError

FIT_NAMES = ("q-linear", "q-linear-iw")
"""``fit --logged`` policies (mirrors :data:`agentroute.offpolicy.FIT_NAMES`, kept here so the CLI loads light)."""


def _echo(quiet: bool, msg: str) -> None:
    if not quiet:
        click.echo(msg)


def _read(logged: str) -> list[Any]:
    from agentroute.errors import AgentRouteError
    from agentroute.offpolicy import read_logged

    try:
        records = read_logged(logged)
    except AgentRouteError as e:
        raise CliError(str(e)) from None
    if not records:
        raise CliError(f"--logged {logged}: the log holds no decision (run tasks with tracing to a store first, "
                       "or export a store that has some)")
    return records


def _label(spec: str, taken: dict[str, Any]) -> str:
    p = Path(spec)
    label = p.stem if p.suffix in (".yaml", ".yml", ".json", ".npz") else spec
    while label in taken:
        label += "'"
    return label


def _interval(e: dict[str, float]) -> str:
    return f"{e['value']:.4f} [{e['ci_low']:.4f}, {e['ci_high']:.4f}]"


def eval_logged(logged: str, specs: list[str], out: str, *, cost_weight: float | None, clip: float,
                n_boot: int, seed: int, quiet: bool) -> None:
    """``agentroute eval --logged SOURCE --policy P [P ...]``: off-policy values into ``DIR/metrics.json``."""
    from agentroute.errors import AgentRouteError
    from agentroute.offpolicy import evaluate_logged

    if not specs:
        raise CliError("give at least one --policy P to evaluate on the log")
    records = _read(logged)
    lam = 0.0 if cost_weight is None else cost_weight
    results: dict[str, Any] = {}
    for spec in specs:
        try:
            res = evaluate_logged(records, spec, cost_weight=lam, clip=clip, n_boot=n_boot, seed=seed)
        except AgentRouteError as e:
            raise CliError(f"--policy {spec}: {e}") from None
        results[_label(spec, results)] = res
    first = next(iter(results.values()))
    report: dict[str, Any] = {
        "source": logged, "cost_weight": lam, "clip": clip, "bootstrap": n_boot, "level": first["level"],
        "tasks": first["tasks"], "decisions": first["decisions"], "logged": first["logged"],
        "estimator": first["estimator"], "policies": results,
    }
    if len(results) == 1:  # one policy: its figures at the top level too
        report.update({k: first[k] for k in ("ips", "snips", "dr", "ess")})
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.json").write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    _echo(quiet, f"{first['tasks']} logged tasks, {first['decisions']} decisions; λ = {lam:g} per USD; "
                 f"weights clipped at {clip:g}")
    _echo(quiet, f"  logged policy ({', '.join(first['logged']['policies'])}): {_interval(first['logged'])}")
    for label, r in results.items():
        _echo(quiet, f"  {label}: DR {_interval(r['dr'])}  IPS {_interval(r['ips'])}  SNIPS {_interval(r['snips'])}"
                     f"  ESS {r['ess']:.1f}")
        for w in r["warnings"]:
            click.echo(f"  warning ({label}): {w}", err=True)
    _echo(quiet, f"wrote {path / 'metrics.json'}")


def fit_logged(logged: str, name: str, out: str, *, cost_weight: float | None, quiet: bool) -> None:
    """``agentroute fit --logged SOURCE --policy NAME --out POLICY``."""
    from agentroute.errors import AgentRouteError
    from agentroute.offpolicy import fit_logged as fit
    from agentroute.policies import save_policy

    records = _read(logged)
    try:
        policy = fit(records, name, cost_weight=0.0 if cost_weight is None else cost_weight)
    except AgentRouteError as e:
        raise CliError(str(e)) from None
    card = save_policy(policy, out, meta={"source": str(logged)})
    _echo(quiet, f"fitted {name} on {policy.meta['tasks']} logged tasks ({policy.meta['decisions']} decisions, "
                 f"{len(policy.model.keys)} point/option pairs) -> {card}")


@click.command("promote")
@click.option("--logged", required=True, help="STORE_URL or EXPORT_FILE (`agentroute traces export`).")
@click.option("--candidate", required=True,
              help="Policy to promote: a saved policy, a rules YAML, cheapest/strongest/random, fixed:ID, or "
                   "shadow:NAME (a shadow recorded with the decisions).")
@click.option("--baseline", default="logged", show_default=True,
              help="'logged' (the policy that wrote the log, valued by its own mean reward) or a policy, valued "
                   "off-policy.")
@click.option("--cost-weight", type=float, default=0.0, show_default=True,
              help="λ per USD: reward = quality − λ·cost_usd.")
@click.option("--clip", type=float, default=50.0, show_default=True, help="Cap on a task's cumulative weight.")
@click.option("--bootstrap", "n_boot", type=int, default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
def promote_cmd(logged: str, candidate: str, baseline: str, cost_weight: float, clip: float, n_boot: int,
                seed: int, as_json: bool) -> None:
    """Say whether CANDIDATE beats BASELINE with confidence on the log: exit 0 if it does, 1 if not.

    It does when the lower end of the candidate's 95% doubly robust interval lies above the baseline's value.
    """
    from agentroute.errors import AgentRouteError
    from agentroute.offpolicy import promote

    records = _read(logged)
    try:
        res = promote(records, candidate, baseline, cost_weight=cost_weight, clip=clip, n_boot=n_boot, seed=seed)
    except AgentRouteError as e:
        raise CliError(str(e)) from None
    for w in res["warnings"]:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        click.echo(json.dumps(res, default=str))
    else:
        c, b = res["candidate"], res["baseline"]
        click.echo(f"candidate {c['policy']}: {_interval(c)} (doubly robust, ESS {c['ess']:.1f})")
        click.echo(f"baseline  {b['policy']}: {_interval(b)}")
        verdict = "PROMOTE" if res["promote"] else "KEEP the baseline"
        click.echo(f"{verdict}: the candidate's lower bound {c['ci_low']:.4f} is "
                   f"{'above' if res['promote'] else 'not above'} the baseline's {res['baseline_value']:.4f} "
                   f"({res['tasks']} tasks, λ = {res['cost_weight']:g} per USD)")
    raise SystemExit(0 if res["promote"] else 1)


def register(main: click.Group) -> None:
    """Add ``promote`` (``eval --logged`` and ``fit --logged`` are options of ``eval`` and ``fit``)."""
    main.add_command(promote_cmd)
