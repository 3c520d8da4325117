"""``agentroute memory eval|fit``: measure memory tier policies on graded conversations, and train them.

Only click is imported at module level; the memory stack, numpy, torch and matplotlib load inside the commands, so
``agentroute --help`` stays fast. ``--cost-weight`` (λ) is per USD: recall given up per dollar of context and calls
(80 per USD is the earlier default of 0.2 per 1,000 gpt-4o context tokens).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

NAMED = ("all-low", "all-mid", "all-high", "rule", "cheapest", "strongest", "random")
FIT_KINDS = ("ppo", "rule", "ridge", "knn", "fitted-q")


def _progress(total: int, label: str, quiet: bool) -> Any:
    from agentroute._progress import bar

    return bar(total=total, desc=label, quiet=quiet)


def _memories(conversations: str | None, split_name: str, limit: int | None, embed: str = "hashing") -> list[Any]:
    from dataclasses import replace

    from agentroute.errors import ConfigError
    from agentroute.memory import Memory, load_conversations
    from agentroute.memory._data import split

    convs = load_conversations(conversations)
    if split_name in ("train", "test"):
        train, test = split(convs)
        convs = train if split_name == "train" else test
    elif split_name != "all":
        raise ConfigError(f"unknown split {split_name!r}", name=split_name, hint="train, test or all")
    if limit is not None:
        convs = [replace(c, questions=c.questions[:limit]) for c in convs]
    return [Memory(c, embed=embed) for c in convs]


def _card_retrieval(spec: str) -> str | None:
    """The retrieval a saved policy card was fitted with (``None`` for named policies and older cards)."""
    p = Path(spec).with_suffix(".json")
    if not p.is_file():
        return None
    try:
        got = json.loads(p.read_text(encoding="utf-8")).get("retrieval")
    except (OSError, ValueError, AttributeError):
        return None  # load_policy reports what is wrong with the card
    return str(got) if got is not None else None


_EMBED_HELP = ("Vectors of the mid and high tiers: hashing (offline, default) or minilm (all-MiniLM-L6-v2; needs "
               "the embeddings extra).")


def resolve_policy(spec: str) -> Any:
    """A policy from a name (``all-low``, ``all-mid``, ``all-high``, ``rule``, ...) or a saved card's path."""
    from agentroute.errors import ConfigError
    from agentroute.memory.policies import MemoryRulePolicy, load_policy
    from agentroute.policies.baselines import Cheapest, Fixed, Random, Strongest

    if spec.startswith("all-") and spec in NAMED:
        return Fixed(spec[4:])
    simple = {"rule": MemoryRulePolicy, "cheapest": Cheapest, "strongest": Strongest}
    if spec in simple:
        return simple[spec]()
    if spec == "random":
        return Random(seed=0)
    if Path(spec).suffix in (".json", ".npz") or Path(spec).with_suffix(".json").exists():
        return load_policy(spec)
    raise ConfigError(f"unknown memory policy {spec!r}", name=spec,
                      hint=f"one of {', '.join(NAMED)}, or a card written by `agentroute memory fit`")


def register(main: click.Group) -> None:
    """Add the ``memory`` group to ``main``."""

    @main.group("memory")
    def memory_group() -> None:
        """Memory in budget tiers (low / mid / high per module), measured on LoCoMo with no model."""

    @memory_group.command("eval")
    @click.option("--conversations", type=click.Path(file_okay=False), default=None,
                  help="Folder of LoCoMo *.json (default: $AGENTROUTE_DATA_DIR/locomo).")
    @click.option("--policy", "policy_spec", default="rule", show_default=True,
                  help="all-low | all-mid | all-high | rule | cheapest | strongest | random | path to a policy card.")
    @click.option("--cost-weight", type=float, default=80.0, show_default=True,
                  help="λ per USD of the reported objective quality − λ·cost_usd (80 = 0.2 per 1,000 gpt-4o "
                       "context tokens).")
    @click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                  help="Folder for metrics.json and frontier.png.")
    @click.option("--split", "split_name", type=click.Choice(["test", "train", "all"]), default="test",
                  show_default=True, help="Which conversations: the held-out test split by default.")
    @click.option("--budget-usd", type=float, default=None, help="Per-question memory budget (default: none).")
    @click.option("--mix", type=float, default=0.5, show_default=True, help="Weight of evidence vs answer recall.")
    @click.option("--all-combos", is_flag=True, help="Also draw all 81 fixed tier combinations on the frontier.")
    @click.option("--embed", type=click.Choice(["hashing", "minilm"]), default=None,
                  help=_EMBED_HELP + " Default: what the policy card was fitted with, else hashing.")
    @click.option("--limit", type=int, default=None, help="Only the first N questions of each conversation.")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    def eval_cmd(conversations: str | None, policy_spec: str, cost_weight: float, out_dir: str, split_name: str,
                 budget_usd: float | None, mix: float, all_combos: bool, embed: str | None, limit: int | None,
                 quiet: bool) -> None:
        """Recall every graded question with POLICY; write metrics.json and frontier.png."""
        from agentroute.errors import ConfigError
        from agentroute.memory.evaluate import combo_table, fixed_outcomes, gradable, run_policy, summarise
        from agentroute.memory.plots import frontier_plot

        policy = resolve_policy(policy_spec)
        fitted_with = _card_retrieval(policy_spec)
        if embed is not None and fitted_with is not None and embed != fitted_with:
            raise ConfigError(
                f"{policy_spec} was fitted on {fitted_with} retrieval, not {embed}: its features would not mean "
                "what they meant in training", name="--embed",
                hint=f"drop --embed (or pass --embed {fitted_with}), or refit with --embed {embed}")
        embed = embed or fitted_with or "hashing"
        memories = _memories(conversations, split_name, limit, embed)
        n = sum(len(gradable(m.conversation.questions)) for m in memories)
        unit = float(memories[0].usd(1000) or 1.0)
        refs: dict[str, Any] = {}
        with _progress(n * (4 + (27 if all_combos else 0)), "memory eval", quiet) as bar:
            rows = run_policy(memories, policy, budget_usd=budget_usd, progress=bar.update)
            for name in ("all-low", "all-mid", "all-high"):
                refs[name] = summarise(run_policy(memories, resolve_policy(name), progress=bar.update))["overall"]
            combos: list[dict[str, Any]] = []
            if all_combos:
                table = combo_table(memories, progress=lambda k: bar.update(27 * k))
                from agentroute.memory.evaluate import COMBOS

                for c in COMBOS:
                    o = summarise(fixed_outcomes(table, c))["overall"]
                    combos.append({"tiers": list(c), **o})
        metrics = summarise(rows)
        o = metrics["overall"]
        q = mix * o["evidence_recall"] + (1 - mix) * o["answer_recall"]
        metrics.update(
            policy=policy_spec, policy_name=getattr(policy, "name", policy_spec), split=split_name,
            conversations=[m.conversation.id for m in memories], cost_weight=cost_weight, mix=mix,
            objective=q - cost_weight * o["cost_usd"], cost_unit="usd", context_1k_usd=unit, budget_usd=budget_usd,
            answer_model=memories[0].config.answer_model, call_model=memories[0].config.call_model, retrieval=embed,
            token_count="approximate: 4 characters per token", reference=refs,
        )
        if combos:
            metrics["fixed_combinations"] = combos
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        frontier_plot(out / "frontier.png", {policy_spec: o}, refs, combos)
        click.echo(
            f"{policy_spec}: evidence recall {o['evidence_recall']:.3f}, answer recall {o['answer_recall']:.3f}, "
            f"${o['cost_usd']:.6f} and {o['cost_tokens']:.0f} tokens per question ({o['n']} questions)"
        )
        hi = refs["all-high"]
        click.echo(
            f"all-high: evidence recall {hi['evidence_recall']:.3f} at ${hi['cost_usd']:.6f}; "
            f"wrote {out / 'metrics.json'} and {out / 'frontier.png'}"
        )

    @memory_group.command("fit")
    @click.option("--conversations", type=click.Path(file_okay=False), default=None,
                  help="Folder of LoCoMo *.json (default: $AGENTROUTE_DATA_DIR/locomo).")
    @click.option("--policy", "kind", type=click.Choice(FIT_KINDS), default="fitted-q", show_default=True)
    @click.option("--cost-weight", type=float, default=80.0, show_default=True,
                  help="λ per USD: recall given up per dollar (80 = 0.2 per 1,000 gpt-4o context tokens).")
    @click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
                  help="Policy card to write (.json; weights go beside it as .npz).")
    @click.option("--split", "split_name", type=click.Choice(["train", "all"]), default="train", show_default=True)
    @click.option("--mix", type=float, default=0.5, show_default=True, help="Weight of evidence vs answer recall.")
    @click.option("--timesteps", type=int, default=40_000, show_default=True, help="PPO only.")
    @click.option("--reward", type=click.Choice(["budgetmem", "tradeoff"]), default="budgetmem", show_default=True,
                  help="PPO only: the environment's reward.")
    @click.option("--warm-start", is_flag=True,
                  help="PPO only: clone a fitted-q teacher (fitted here) into the actor before PPO fine-tunes it.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--embed", type=click.Choice(["hashing", "minilm"]), default="hashing", show_default=True,
                  help=_EMBED_HELP + " Recorded on the card; eval then uses the same.")
    @click.option("--limit", type=int, default=None, help="Only the first N questions of each conversation.")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    def fit_cmd(conversations: str | None, kind: str, cost_weight: float, out_path: str, split_name: str, mix: float,
                timesteps: int, reward: str, warm_start: bool, seed: int, embed: str, limit: int | None,
                quiet: bool) -> None:
        """Train a memory tier policy on the training conversations and save it (no pickle)."""
        from agentroute.memory.evaluate import gradable
        from agentroute.memory.policies import save_policy
        from agentroute.training import fit_memory_policy

        if warm_start and kind != "ppo":
            from agentroute.errors import ConfigError

            raise ConfigError(f"--warm-start is for --policy ppo, not {kind}", name="--warm-start",
                              hint="drop --warm-start, or use --policy ppo")
        memories = _memories(conversations, split_name, limit, embed)
        n = sum(len(gradable(m.conversation.questions)) for m in memories)
        if kind == "fitted-q":
            from agentroute.memory.fitted import FittedQPolicy, collect

            with _progress(n, "collect", quiet) as bar:
                data = collect(memories, progress=bar.update)
            policy: Any = FittedQPolicy.fit(data, cost_weight=cost_weight, mix=mix)
        else:
            policy = fit_memory_policy(kind, memories, cost_weight=cost_weight, mix=mix, timesteps=timesteps, seed=seed,
                                reward=reward, progress=not quiet and sys.stderr.isatty(), warm_start=warm_start)
        meta = {"retrieval": embed, "mix": mix, "split": split_name, "questions": n, "cost_unit": "usd",
                "cost_weight": cost_weight,
                "conversations": [m.conversation.id for m in memories]}
        path = save_policy(policy, out_path, meta=meta)
        how = f" (ridge shrinkage {policy.alpha:g}, chosen by cross-validation)" if getattr(policy, "cv", None) else ""
        click.echo(f"{kind} policy fitted on {n} questions of {len(memories)} conversations{how}; wrote {path}")

    @memory_group.command("frontier")
    @click.option("--conversations", type=click.Path(file_okay=False), default=None,
                  help="Folder of LoCoMo *.json (default: $AGENTROUTE_DATA_DIR/locomo).")
    @click.option("--policy", "families", multiple=True, type=click.Choice(["fitted-q", "rule", "ridge", "knn"]),
                  default=("fitted-q",), show_default=True,
                  help="Policy family to fit per cost weight on the training split (repeatable).")
    @click.option("--cost-weights", default=None,
                  help="Comma-separated λ per USD to sweep (default: 17 values from 0 to 2000).")
    @click.option("--mix", type=float, default=1.0, show_default=True,
                  help="Weight of evidence vs answer recall in the objective (1: evidence recall only).")
    @click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                  help="Folder for frontier.json and frontier.png.")
    @click.option("--embed", type=click.Choice(["hashing", "minilm"]), default="hashing", show_default=True,
                  help=_EMBED_HELP)
    @click.option("--ceilings/--no-ceilings", default=True, show_default=True,
                  help="Also draw the category and per-question oracles and the verifier cascades "
                       "(they read the held-out outcomes).")
    @click.option("--limit", type=int, default=None, help="Only the first N questions of each conversation.")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    def frontier_cmd(conversations: str | None, families: tuple[str, ...], cost_weights: str | None, mix: float,
                     out_dir: str, embed: str, ceilings: bool, limit: int | None, quiet: bool) -> None:
        """Sweep policy families over lambda: routed frontier against all 81 fixed tier combinations, held out."""
        from agentroute.errors import ConfigError
        from agentroute.memory import frontier as fr
        from agentroute.memory.evaluate import combo_table, gradable
        from agentroute.memory.plots import frontier_plot

        if cost_weights is None:
            lams: tuple[float, ...] = fr.LAMBDAS
        else:
            try:
                lams = tuple(float(x) for x in cost_weights.split(",") if x.strip())
            except ValueError:
                raise ConfigError(f"--cost-weights {cost_weights!r} is not a list of numbers", name="--cost-weights",
                                  hint="for example --cost-weights 0,40,120,400") from None
        if not 0.0 <= mix <= 1.0:
            raise ConfigError(f"--mix must be in [0, 1], got {mix}", name="--mix")
        train = _memories(conversations, "train", limit, embed)
        test = _memories(conversations, "test", limit, embed)
        n_train = sum(len(gradable(m.conversation.questions)) for m in train)
        n_test = sum(len(gradable(m.conversation.questions)) for m in test)
        with _progress(n_test * 27, "fixed combinations", quiet) as bar:
            table = combo_table(test, progress=lambda k: bar.update(27 * k))
        fixed = fr.fixed_points(table)
        refs = {f"all-{t}": table.mean((t,) * 4) for t in ("low", "mid", "high")}
        data = fr.TrainingData(train)
        if "fitted-q" in families:
            with _progress(n_train, "training paths", quiet) as bar:
                data.progress = bar.update
                _ = data.transitions
        if set(families) - {"fitted-q"}:
            with _progress(n_train, "training table", quiet) as bar:
                data.progress = bar.update
                _ = data.table
        data.progress = None
        curves: dict[str, list[dict[str, Any]]] = {}
        for fam in dict.fromkeys(families):
            with _progress(len(lams), f"{fam} sweep", quiet) as bar:
                curves[fam] = fr.sweep(fam, data, test, lams, mix=mix, on_point=lambda _: bar.update(1))
        targets = {fam: fr.targets(pts, refs, fixed) for fam, pts in curves.items()}
        lines: dict[str, Any] = dict(curves)
        if ceilings:
            for name, pts in {**fr.ceilings(table, data.unit_usd), **fr.cascade_ceilings(table)}.items():
                targets[name] = {k: v for k, v in fr.targets(pts, refs).items() if not k.startswith("fixed")}
                lines[name] = pts
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        test_ids = [m.conversation.id for m in test]
        result = {"train": [m.conversation.id for m in train], "test": test_ids,
                  "questions": {"train": n_train, "test": n_test}, "retrieval": embed, "mix": mix,
                  "cost_weights": list(lams), "references": refs, "fixed_combinations": fixed, "curves": curves,
                  "targets": targets}
        (out / "frontier.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        frontier_plot(out / "frontier.png", {}, refs, fixed, lines,
                      title=f"Held-out ({', '.join(test_ids)}): routed memory against fixed tiers")
        hi = refs["all-high"]
        for name, t in targets.items():
            reach = t["cost_share_to_reach_all_high_recall"]
            at60 = t["recall_at_60pct_of_all_high_cost"]
            extra = (f"; matches or beats {t['fixed_combinations_matched_or_beaten']} of 81 fixed combinations"
                     if t.get("fixed_combinations_matched_or_beaten") is not None else "")
            reaches = "never reaches" if reach is None else "reaches"
            at = "" if reach is None else f" at {reach:.0%} of its cost"
            click.echo(f"{name}: {reaches} all-high's evidence recall ({hi['evidence_recall']:.3f}){at}; "
                       f"at 60% of its cost {'-' if at60 is None else f'{at60:.3f}'}{extra}")
        click.echo(f"wrote {out / 'frontier.json'} and {out / 'frontier.png'}")
