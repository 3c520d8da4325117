"""``agentroute pheromones export|import|show`` and ``agentroute replay``.

``pheromones`` works on a colony stored in the SQL store (``--db URL``, else ``AGENTROUTE_DATABASE_URL``, else
``./agentroute.db``; ``--namespace`` names the colony): snapshot it to JSON, restore a snapshot, or draw a heat map
per task type of where the colony goes. ``replay`` is the prequential evaluation of a policy over a routing table
(:mod:`agentroute.replay`); its results file ``step,query_id,option,quality,cost_usd`` is a stable contract.

Only ``click`` is imported at module level; everything else loads inside the commands.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from agentroute import cli_target
from agentroute._cli_util import CliError, friendly

F = TypeVar("F", bound=Callable[..., Any])

_DB_HELP = "Database URL or SQLite file (default: $AGENTROUTE_DATABASE_URL, else ./agentroute.db)."
_NS_HELP = "Colony name inside the database."


class PheromoneCliError(CliError):
    """A problem the user can fix: one line ``error: ...`` on stderr, exit code 2 (whatever the entry point)."""


_friendly = friendly(PheromoneCliError)


def _echo(quiet: bool, msg: str) -> None:
    if not quiet:
        click.echo(msg)


@click.group("pheromones")
def pheromones() -> None:
    """Snapshot, restore and look at stored pheromone tables (the ant-colony router's memory)."""


@pheromones.command("export")
@click.option("--db", default=None, metavar="URL", help=_DB_HELP)
@click.option("--namespace", default="default", show_default=True, help=_NS_HELP)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Snapshot file (.json).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@_friendly
def export_cmd(db: str | None, namespace: str, out: str, quiet: bool) -> None:
    """Write a JSON snapshot of a stored colony (every edge: level, visits, updates; and the update rule)."""
    from agentroute.policies._pheromone_sql import read_snapshot

    snap = read_snapshot(db, namespace)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(snap, indent=1, sort_keys=True), encoding="utf-8")
    _echo(quiet, f"wrote {len(snap['edges'])} edges of {namespace!r} to {out}")


@pheromones.command("import")
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False))
@click.option("--db", default=None, metavar="URL", help=_DB_HELP)
@click.option("--namespace", default=None, help="Colony to write (default: the snapshot's own namespace).")
@click.option("--mode", type=click.Choice(["replace", "merge"]), default="replace", show_default=True,
              help="replace: drop the colony's edges first; merge: visit-weighted mean with what is there.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@_friendly
def import_cmd(snapshot: str, db: str | None, namespace: str | None, mode: str, quiet: bool) -> None:
    """Restore SNAPSHOT (made by `pheromones export`) into the database."""
    from agentroute.errors import DataError
    from agentroute.policies._pheromone_sql import SQLPheromoneTable, read_snapshot
    from agentroute.policies._pheromone_store import parse_snapshot

    snap = _load_json(snapshot)
    parse_snapshot(snap, source=snapshot)
    ns = namespace or snap.get("namespace") or "default"
    if not isinstance(ns, str) or len(ns) > 200:
        raise DataError(f"{snapshot}: 'namespace' must be a name of at most 200 characters", name="namespace")
    try:
        read_snapshot(db, ns)
        exists = True  # the colony exists: keep its update rule, clamp the snapshot into its bounds
    except DataError:
        exists = False
    params = None if exists else _snapshot_params(snapshot, snap)
    table = SQLPheromoneTable(db, namespace=ns, params=params)
    n = table.restore(snap, mode=mode)
    _echo(quiet, f"{mode}d {n} edges into {ns!r} at {table.url}")


@pheromones.command("show")
@click.option("--db", default=None, metavar="URL", help=_DB_HELP)
@click.option("--namespace", default="default", show_default=True, help=_NS_HELP)
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False),
              help="Read a snapshot file instead of the database.")
@click.option("--task-type", "task_type", default=None, help="Only this task type (default: one panel per type).")
@click.option("--point", default=None, help="Only this routing point.")
@click.option("--transitions", is_flag=True, help="Also show transition edges (previous choice -> option).")
@click.option("--alpha", type=float, default=8.0, show_default=True,
              help="α used to turn levels into where the colony goes (τ^α, normalised per row).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Heat map image (.png).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@_friendly
def show_cmd(db: str | None, namespace: str, from_file: str | None, task_type: str | None, point: str | None,
             transitions: bool, alpha: float, out: str, quiet: bool) -> None:
    """Draw a heat map per task type: rows are routing points, columns options, cells the share τ^α."""
    from agentroute.policies._pheromone_store import parse_snapshot

    if from_file:
        snap = _load_json(from_file)
        parse_snapshot(snap, source=from_file)
    else:
        from agentroute.policies._pheromone_sql import read_snapshot

        snap = read_snapshot(db, namespace)
    panels = heat_panels(snap, task_type=task_type, point=point, transitions=transitions, alpha=alpha)
    if not panels:
        raise click.UsageError(
            f"nothing to draw: no edges{' of task type ' + repr(task_type) if task_type else ''}"
            f"{' at point ' + repr(point) if point else ''}"
        )
    draw_heatmap(panels, out, title=f"pheromones {snap.get('namespace', '')} (share of τ^{alpha:g} per row)")
    for t, (rows, cols, _share, tau) in panels.items():
        for r, row in zip(rows, tau, strict=True):
            top = max(range(len(cols)), key=lambda j: row[j] if not math.isnan(row[j]) else -1.0)
            _echo(quiet, f"{t} | {r}: strongest trail {cols[top]} (τ={row[top]:.3f})")
    _echo(quiet, f"wrote {out}")


def _snapshot_params(path: str, snap: dict[str, Any]) -> Any:
    """The update rule a snapshot carries (for a colony that does not exist yet)."""
    from agentroute.errors import ConfigError, DataError
    from agentroute.policies._pheromone_store import PheromoneParams

    raw = snap.get("params", {})
    if not isinstance(raw, dict):
        raise DataError(f"{path}: 'params' must be an object", name="params")
    try:
        return PheromoneParams(**raw)
    except TypeError as e:
        raise DataError(f"{path}: bad 'params' in the snapshot: {e}", name="params") from None
    except ConfigError as e:
        raise DataError(f"{path}: bad 'params' in the snapshot: {e}", name=e.name) from None


MAX_SNAPSHOT_BYTES = 512 * 2**20
"""The largest snapshot file read (a bound on untrusted input)."""


def _load_json(path: str) -> Any:
    """A snapshot file's JSON, read with a size bound; :class:`DataError` for anything else."""
    from agentroute.errors import DataError

    try:
        size = Path(path).stat().st_size
        if size > MAX_SNAPSHOT_BYTES:
            raise DataError(f"{path}: {size} bytes, over the {MAX_SNAPSHOT_BYTES}-byte limit of a snapshot", name=path)
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except DataError:
        raise
    except (OSError, ValueError, RecursionError) as e:
        raise DataError(f"{path}: not a JSON snapshot: {str(e)[:200]}", name=path) from None


def heat_panels(snap: dict[str, Any], *, task_type: str | None = None, point: str | None = None,
                transitions: bool = False, alpha: float = 8.0
                ) -> dict[str, tuple[list[str], list[str], list[list[float]], list[list[float]]]]:
    """Per task type: (row labels, option labels, share τ^α per row, τ) of the snapshot's edges.

    A cell whose option has no edge at that row (not an option there) holds NaN in both ``share`` and ``τ``.
    """
    by_type: dict[str, dict[str, dict[str, float]]] = {}
    for e in snap["edges"]:
        if task_type is not None and e["task_type"] != task_type:
            continue
        if point is not None and e["point"] != point:
            continue
        if e["prev"] and not transitions:
            continue
        row = e["point"] if not e["prev"] else f"{e['prev']} → {e['point']}"
        by_type.setdefault(e["task_type"], {}).setdefault(row, {})[e["option"]] = float(e["tau"])
    out = {}
    for t, rows in sorted(by_type.items()):
        cols = sorted({o for r in rows.values() for o in r})
        names = sorted(rows)
        tau = [[rows[r].get(o, math.nan) for o in cols] for r in names]
        share = []
        for row in tau:  # an option with no edge at this point is not an option there: NaN, not a share of 0
            w = [0.0 if math.isnan(v) else v**alpha for v in row]
            z = sum(w) or 1.0
            share.append([math.nan if math.isnan(v) else x / z for v, x in zip(row, w, strict=True)])
        out[t] = (names, cols, share, tau)
    return out


def draw_heatmap(panels: dict[str, Any], out: str, *, title: str = "") -> Path:
    """Render :func:`heat_panels` to a PNG: one panel per task type, τ printed in each cell.

    A cell whose option is not offered at that point is grey, hatched and marked "n/a", never a share of 0.
    """
    import matplotlib
    import matplotlib.patches

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    width = max(6.0, 0.7 * max(len(p[1]) for p in panels.values()) + 3)
    heights = [0.45 * len(p[0]) + 1.6 for p in panels.values()]
    fig, axes = plt.subplots(n, 1, figsize=(width, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (t, (rows, cols, share, tau)) in zip(axes[:, 0], panels.items(), strict=True):
        # grey, hatched below: not an option at this point (unlike a share of 0, pale yellow)
        cmap = matplotlib.colormaps["YlOrBr"].with_extremes(bad="#d9d9d9")
        im = ax.imshow(share, aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0)
        ax.set_title(f"task type: {t}", fontsize=10, loc="left")
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_xticks(range(len(cols)), cols, fontsize=8, rotation=35, ha="right")
        for i, row in enumerate(tau):
            for j, v in enumerate(row):
                if math.isnan(v):
                    ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//",
                                                              edgecolor="#a0a0a0", linewidth=0))
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=6, color="dimgrey")
                else:
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if share[i][j] > 0.6 else "black")
        bar = fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
        bar.set_label(r"share of choices $\tau^\alpha / \Sigma\,\tau^\alpha$ (n/a: not an option)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def _read_table(spec: str) -> Any:
    from agentroute.data import BUILTIN, RoutingTable, load_builtin

    if spec in BUILTIN and not Path(spec).exists():
        return load_builtin(spec)
    if spec.startswith("builtin:"):
        return load_builtin(spec.split(":", 1)[1])
    if not Path(spec).exists():
        raise click.BadParameter(f"{spec!r} is neither a file nor a built-in table ({', '.join(BUILTIN)})",
                                 param_hint="--table")
    return RoutingTable.read(spec, drop_incomplete=True)


@click.command("replay")
@click.option("--table", "table_spec", required=True, metavar="TABLE",
              help="Routing table file (.csv/.jsonl/.parquet) or a built-in name: routerbench, llmrouter, routellm.")
@click.option("--policy", "policy_name", required=True, metavar="NAME",
              help="pheromone, bandit, random, cheapest, strongest, or the path of a fitted policy.")
@click.option("--cost-weight", "cost_weight", type=float, default=0.0, show_default=True, metavar="λ",
              help="λ per USD: reward = quality − λ·cost_usd (quality given up per dollar).")
@click.option("--order", type=click.Choice(["given", "shuffle"]), default="given", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--drift-at", "drift_at", type=int, default=None, metavar="N",
              help="From query N on, the options' outcomes are permuted among the options.")
@click.option("--limit", type=int, default=None, metavar="N", help="Only the first N queries of the stream.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="RESULTS.csv")
@click.option("--summary", type=click.Path(dir_okay=False), default=None, help="Also write a JSON summary here.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success; no progress bar.")
@click.option("--ray", "use_ray", is_flag=True, hidden=True)  # accepted only to say why it does not apply
@cli_target.replay_options
@_friendly
def replay_cmd(table_spec: str, policy_name: str, cost_weight: float, order: str, seed: int, drift_at: int | None,
               limit: int | None, out: str, summary: str | None, quiet: bool, use_ray: bool, **target: Any) -> None:
    """Prequential evaluation: the policy decides each query in turn and learns only what it chose.

    With --target-spend or --target-strong-share the policy is held to that target online (its λ moved after
    every query) and the realised rate is reported against it.
    """
    from agentroute.replay import make_policy, replay, summarize

    if use_ray:
        raise CliError("--ray does not apply to replay: a replay is one stream in which each decision learns from "
                       "the outcomes before it (nothing to run in parallel, no model calls); run replays of several "
                       "seeds or policies as separate commands, or judge policies on graph tasks with "
                       "'agentroute eval --scenario FILE --ray'")
    if cost_weight < 0 or not math.isfinite(cost_weight):
        raise click.BadParameter("must be a finite number >= 0", param_hint="--cost-weight")
    table = _read_table(table_spec)
    held = target["target_spend"] is not None or target["target_strong_share"] is not None
    if held and Path(policy_name).exists():  # a fitted (perhaps calibrated) policy starts from its own λ
        from agentroute.policies import load_policy

        policy = load_policy(policy_name)
    else:
        policy = make_policy(policy_name, table, seed=seed, cost_weight=cost_weight)  # λ per USD, as replay takes
    policy = cli_target.hold(policy, **target)
    res = replay(table, policy, cost_weight=cost_weight, order=order, seed=seed, drift_at=drift_at, limit=limit,
                 progress=not quiet and sys.stderr.isatty())
    close = getattr(policy, "close", None)
    if callable(close):
        close()
    res.write_csv(out)
    s = summarize(res, table, warmup=min(300, max(len(res.rows) // 4, 1)))
    if summary:
        Path(summary).parent.mkdir(parents=True, exist_ok=True)
        Path(summary).write_text(json.dumps(s, indent=1), encoding="utf-8")
    _echo(quiet, f"{s['policy']}: {s['steps']} steps, mean reward {s['mean_reward']:.4f}; after warm-up "
                 f"{s['mean_reward_after_warmup']:.4f} vs best single option {s['best_single_after_warmup']:.4f} "
                 f"({s['best_single_option']}), ratio {s['ratio_to_best']:.3f}")
    line = cli_target.report(s)
    if line:
        _echo(quiet, line)
    if drift_at is not None:
        _echo(quiet, f"after drift at {drift_at}: recovered in {s['recovery_steps']} steps; ratio after recovery "
                     f"{s['ratio_after_recovery']:.3f}")
    _echo(quiet, f"wrote {out}")


def register(main: click.Group) -> None:
    """Add ``pheromones export|import|show`` and ``replay`` to the command line."""
    main.add_command(pheromones)
    main.add_command(replay_cmd)


__all__ = ["draw_heatmap", "heat_panels", "register"]
