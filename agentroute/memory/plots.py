"""The cost / evidence-recall frontier picture of memory tier policies (matplotlib, imported lazily, no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def frontier_plot(
    path: str | Path,
    policies: Mapping[str, Mapping[str, Any]],
    references: Mapping[str, Mapping[str, Any]],
    combos: Sequence[Mapping[str, Any]] = (),
    curves: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    title: str = "Memory tiers: evidence recall against cost",
) -> Path:
    """Draw fixed combinations (grey), all-low/mid/high (squares), policies (stars) and routed curves (lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    scale = 1e6
    if combos:
        ax.scatter([c["cost_usd"] * scale for c in combos], [c["evidence_recall"] for c in combos], s=10,
                   color="0.75", label="fixed combinations")
    for (name, r), marker in zip(references.items(), ("v", "s", "^", "D", "P"), strict=False):
        ax.scatter([r["cost_usd"] * scale], [r["evidence_recall"]], marker=marker, s=55, color="black",
                   label=name, zorder=4)
    hi = references.get("all-high")
    if hi is not None and curves:
        ax.axvline(0.6 * hi["cost_usd"] * scale, color="0.5", lw=0.8, ls=":", label="60% of all-high's cost")
        ax.axhline(hi["evidence_recall"], color="0.5", lw=0.8, ls="--", label="all-high's recall")
    for name, pts in (curves or {}).items():
        pts = sorted(pts, key=lambda p: p["cost_usd"])
        ceiling = "ceiling" in name
        ax.plot([p["cost_usd"] * scale for p in pts], [p["evidence_recall"] for p in pts],
                marker="" if ceiling else "o", ms=3, ls="--" if ceiling else "-", lw=1.0 if ceiling else 1.6,
                label=name)
    for name, r in policies.items():
        ax.scatter([r["cost_usd"] * scale], [r["evidence_recall"]], marker="*", s=160, color="crimson",
                   label=name, zorder=5)
    ax.set_xlabel("cost per question (micro-USD)")
    ax.set_ylabel("evidence recall")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
