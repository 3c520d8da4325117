"""The target options of ``agentroute fit`` and ``agentroute replay``: calibrate or hold λ to a spend or strong share.

``fit --target-spend USD`` / ``--target-strong-share S`` calibrate the fitted router's λ offline
(:func:`agentroute.policies.calibrate`, on the training table or ``--calibrate-on TABLE``); ``replay`` with the same
options holds the replayed policy to the target online (:class:`~agentroute.policies.TargetSpend` /
:class:`~agentroute.policies.TargetShare`) and reports the realised rate against the target. Only ``click`` is
imported at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

_SPEND_HELP = "USD per query to spend on average (quality given up to stay there)."
_SHARE_HELP = "Share of queries (0-1) sent to the strong option, as RouteLLM calibrates."
_STRONG_HELP = "With --target-strong-share: the strong option (default: the option of highest mean cost)."


def _targets(fn: F) -> F:
    fn = click.option("--strong", default=None, metavar="OPTION", help=_STRONG_HELP)(fn)
    fn = click.option("--target-strong-share", "target_strong_share", default=None, metavar="S",
                      type=click.FloatRange(0.0, 1.0), help=_SHARE_HELP)(fn)
    return click.option("--target-spend", "target_spend", default=None, metavar="USD",
                        type=click.FloatRange(min=0.0), help=_SPEND_HELP)(fn)


def fit_options(fn: F) -> F:
    """``--target-spend``, ``--target-strong-share``, ``--strong``, ``--calibrate-on`` and its categories."""
    fn = click.option("--calibrate-categories/--calibrate-no-categories", "calibrate_categories", default=True,
                      show_default=True,
                      help="With a target: route the calibration queries with their categories, or without them "
                           "when the router will be served without (replays, tasks with no category).")(fn)
    fn = click.option("--calibrate-on", "calibrate_on", default=None, metavar="TABLE",
                      type=click.Path(exists=True, dir_okay=False),
                      help="With a target: calibrate λ on this table (e.g. a held-out part of the training data) "
                           "instead of the training table.")(fn)
    return _targets(fn)


def replay_options(fn: F) -> F:
    """``--target-spend``, ``--target-strong-share``, ``--strong``, ``--tolerance`` and ``--target-warmup``."""
    fn = click.option("--target-warmup", "target_warmup", default=100, show_default=True,
                      type=click.IntRange(min=0), metavar="N",
                      help="With a target: queries before the realised rate is judged.")(fn)
    fn = click.option("--tolerance", default=0.1, show_default=True, type=click.FloatRange(0.0, 10.0, min_open=True),
                      help="With a target: how far from it (relative) still counts as held.")(fn)
    return _targets(fn)


def _one(target_spend: float | None, target_strong_share: float | None, strong: str | None) -> str | None:
    if target_spend is not None and target_strong_share is not None:
        raise click.UsageError("give --target-spend or --target-strong-share, not both")
    if strong is not None and target_strong_share is None:
        raise click.UsageError("--strong goes with --target-strong-share")
    if target_spend is not None:
        return "spend"
    return "strong_share" if target_strong_share is not None else None


def calibrate_fitted(policy: Any, table: Any, *, target_spend: float | None, target_strong_share: float | None,
                     strong: str | None, calibrate_on: Any, cost_weight: float | None,
                     calibrate_categories: bool = True) -> str | None:
    """Calibrate ``policy`` (fitted on ``table``) to the target given, if any; the line ``fit`` prints."""
    kind = _one(target_spend, target_strong_share, strong)
    if kind is None:
        if calibrate_on is not None:
            raise click.UsageError("--calibrate-on goes with --target-spend or --target-strong-share")
        return None
    if cost_weight is not None:
        raise click.UsageError("--cost-weight and a target both set λ: give one of them")
    from agentroute.policies import calibrate

    cal = calibrate(policy, calibrate_on if calibrate_on is not None else table, spend=target_spend,
                    strong_share=target_strong_share, strong=strong, categories=calibrate_categories)
    lo, hi = cal.feasible
    if kind == "spend":
        what = f"${cal.achieved:.6g} per query (target ${cal.target:.6g}; reachable ${lo:.6g} to ${hi:.6g})"
    else:
        what = (f"{cal.achieved:.4f} of queries to {cal.strong} (target {cal.target:.4g}; reachable {lo:.4f} to "
                f"{hi:.4f})")
    return (f"  calibrated on {cal.n_queries} queries: λ={cal.cost_weight:.6g}/USD spends {what}, "
            f"mean quality {cal.quality:.4f}")


def hold(policy: Any, *, target_spend: float | None, target_strong_share: float | None, strong: str | None,
         tolerance: float, target_warmup: int) -> Any:
    """``policy`` wrapped to hold the target given (itself when none)."""
    kind = _one(target_spend, target_strong_share, strong)
    if kind is None:
        return policy
    from agentroute.policies import TargetShare, TargetSpend

    if kind == "spend":
        assert target_spend is not None
        return TargetSpend(policy, usd_per_task=target_spend, tolerance=tolerance, warmup=target_warmup)
    assert target_strong_share is not None
    return TargetShare(policy, strong_share=target_strong_share, strong=strong, tolerance=tolerance,
                       warmup=target_warmup)


def report(summary: dict[str, Any]) -> str | None:
    """The line ``replay`` prints for a target (``None`` without one)."""
    t = summary.get("target")
    if not t:
        return None

    def rate(v: float | None) -> str:
        if v is None:
            return "n/a"
        return f"${v:.6g}/query" if t["kind"] == "spend" else f"{v:.4f}"

    goal = f"spend ${t['target']:.6g}/query" if t["kind"] == "spend" else \
        f"strong share {t['target']:.4g} ({t.get('strong')})"
    within = {True: "yes", False: "NO", None: "n/a (the stream ended in the warm-up)"}[t["within_tolerance"]]
    return (f"target {goal} ±{t['tolerance']:.0%}: realised {rate(t['realised'])} after {t['warmup']} queries of "
            f"warm-up ({rate(t['realised_all'])} overall); within tolerance: {within}; λ ended at "
            f"{t['cost_weight']:.6g}/USD")


__all__ = ["calibrate_fitted", "fit_options", "hold", "replay_options", "report"]
