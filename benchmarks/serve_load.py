"""Load on `agentroute serve` against LiteLLM's proxy: overspend, latency added by the server, throughput.

1,000 requests, 100 concurrent, to `agentroute serve --workers 4 --ledger redis://...` serving a bare router over two
mock tiers, for 3 tenants (each with a team key and a tenant key) whose budgets run out mid-test. Every model call
goes to one mock OpenAI upstream (a separate process) that answers after 50 ms and counts what it served. Reported:
per level, spend against its limit (overspend must be 0), what the upstream billed (a cross-check of the ledgers),
p50/p99 latency added by the server (client latency minus the upstream's 50 ms, answered requests), throughput.

LiteLLM's proxy, run side by side with the same mock model and upstream, is found in a separate virtualenv
(`--litellm-venv`, `$AGENTROUTE_LITELLM_PROXY_VENV`, default /work/.venv-litellm-proxy; `pip install
'litellm[proxy]'` there, never in the project's venv). Its per-key `max_budget` needs its database (Prisma on
PostgreSQL); when that cannot start, the per-key comparison is skipped with the reason, and the proxy is run without a
database with its proxy-wide ``max_budget`` set to the tenants' budgets summed: its overspend is what it billed past
that sum (LiteLLM warns that without a database that budget is not enforced), and its latency and throughput.

    python benchmarks/serve_load.py --out serve_load.json [--redis redis://127.0.0.1:6379/6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # this checkout's agentroute, whatever is installed
    sys.path.insert(0, str(REPO))
PRICES = {"mock-small": (Decimal("0.000001"), Decimal("0.000002")), "mock-large": (Decimal("0.000004"),
                                                                                   Decimal("0.000008"))}
COMPLETION_TOKENS = 20
TENANTS = [  # (tenant, tenant budget, team budget, team-key budget)
    ("t1", "0.020", "0.012", "0.008"),
    ("t2", "0.030", "0.015", "0.010"),
    ("t3", "0.045", "0.020", "0.015"),
]


def tenants_yaml() -> str:
    lines = ["tenants:"]
    for t, tb, mb, kb in TENANTS:
        lines += [f"  - name: {t}", f'    budget: {{usd: "{tb}"}}', '    per_task: {usd: "0.001"}', "    teams:",
                  "      - name: team", f'        budget: {{usd: "{mb}"}}', "        keys:",
                  f'          - {{name: k1, key: "sk-bench-{t}-k1", budget: {{usd: "{kb}"}}}}', "    keys:",
                  f'      - {{name: k0, key: "sk-bench-{t}-k0"}}']
    lines += ["  - name: warm", "    keys:", '      - {name: w, key: "sk-bench-warm-w"}']  # warm-up only, unlimited
    return "\n".join(lines) + "\n"


def warm_up(url: str, model: str, key: str, n: int) -> None:
    """First requests of a worker pay for lazy imports (LiteLLM's providers, tokenizers): not what is measured."""
    asyncio.run(load(url, n, 8, model, lambda i: ("warm", key)))


def keys() -> list[tuple[str, str]]:
    return [(t, f"sk-bench-{t}-{k}") for t, *_ in TENANTS for k in ("k0", "k1")]


# -- what `agentroute serve serve_load:SERVED` serves (built in each worker) ---------------------------------------
def __getattr__(name: str) -> Any:
    if name != "SERVED":
        raise AttributeError(name)
    import agentroute as ar
    from agentroute.serve import Router

    url = os.environ["AGENTROUTE_BENCH_UPSTREAM"]
    tiers = [ar.ModelTier(n, model=f"openai/{n}", api_base=url, api_key_env="AGENTROUTE_BENCH_KEY",
                          input_cost_per_token=p[0], output_cost_per_token=p[1], max_tokens=64)
             for n, p in PRICES.items()]
    return {"mock": Router("mock", tiers, ar.policies.Strongest(), max_tokens=64, max_retries=0)}


# -- the mock upstream --------------------------------------------------------------------------------------------
def upstream_app(latency: float) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    stats: dict[str, Any] = {"calls": 0, "usd": Decimal(0), "by_model": {}}

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        await asyncio.sleep(latency)
        model = str(body.get("model", "mock-large")).split("/")[-1]
        prompt = sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages", []))
        out = min(COMPLETION_TOKENS, int(body.get("max_tokens") or body.get("max_completion_tokens") or 1000))
        p_in, p_out = PRICES.get(model, PRICES["mock-large"])
        stats["calls"] += 1
        stats["usd"] += p_in * prompt + p_out * out
        stats["by_model"][model] = stats["by_model"].get(model, 0) + 1
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": " ".join(["ok"] * out)}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}})

    async def get_stats(request: Request) -> JSONResponse:
        return JSONResponse({**stats, "usd": str(stats["usd"])})

    async def reset(request: Request) -> JSONResponse:
        stats.update(calls=0, usd=Decimal(0), by_model={})
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/stats", get_stats), Route("/reset", reset, methods=["POST"])])


# -- processes ------------------------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float, log: Path | None = None) -> str | None:
    """None when ``url`` answers 200/401; else why not (the process exited, or the time ran out)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with {proc.returncode}: {_tail(log)}"
        try:
            if httpx.get(url, timeout=2).status_code in (200, 401):
                return None
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return f"not ready after {seconds:.0f} s: {_tail(log)}"


def _tail(log: Path | None, n: int = 400) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace")
    for marker in ("binaries.prisma.sh", "Prisma", "Error"):
        i = text.find(marker)
        if i >= 0:
            return " ".join(text[max(0, i - 150): i + n].split())
    return " ".join(text[-n:].split())


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the load -------------------------------------------------------------------------------------------------------
async def load(url: str, n: int, concurrency: int, model: str, key_of: Any) -> dict[str, Any]:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    out: list[tuple[int, float, str]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        async def one(i: int) -> None:
            tenant, key = key_of(i)
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await c.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                     json={"model": model, "max_tokens": 64,
                                           "messages": [{"role": "user", "content": f"question number {i}"}]})
                    status = r.status_code
                except httpx.HTTPError:
                    status = -1
                out.append((status, time.perf_counter() - t0, tenant))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
    return {"results": out, "wall": wall}


def summarize(run: dict[str, Any], latency: float) -> dict[str, Any]:
    res = run["results"]
    ok = [t for s, t, _ in res if s == 200]
    added = sorted(max(0.0, t - latency) * 1000 for t in ok)
    refused = sorted(t * 1000 for s, t, _ in res if s == 429)
    statuses: dict[str, int] = {}
    for s, _, _ in res:
        statuses[str(s)] = statuses.get(str(s), 0) + 1

    def pct(xs: list[float], q: float) -> float | None:
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 2) if xs else None

    return {"requests": len(res), "statuses": statuses, "wall_s": round(run["wall"], 2),
            "throughput_rps": round(len(res) / run["wall"], 1), "answered": len(ok),
            "added_ms_p50": pct(added, 0.5), "added_ms_p99": pct(added, 0.99),
            "refused_ms_p50": pct(refused, 0.5), "mean_ms": round(statistics.fmean(t for _, t, _ in res) * 1000, 1)}


def overspend_agentroute(redis_url: str, prefix: str) -> dict[str, Any]:
    from agentroute.serve import Levels, parse_tenants

    levels = Levels(parse_tenants(tenants_yaml()), redis_url, prefix=prefix)
    rows = {}
    total = Decimal(0)
    for path, ledger in levels.ledgers.items():
        if "warm" in path:
            continue
        spent_now, held = ledger.backend.totals()
        spent = spent_now.usd or Decimal(0)
        limit = ledger.limits.usd
        over = max(Decimal(0), spent - limit) if limit is not None else Decimal(0)
        total += over
        rows[path] = {"limit": None if limit is None else str(limit), "spent": f"{spent:f}", "over": f"{over:f}",
                      "still_reserved": f"{held.usd or 0:f}"}
    spent_all = sum((Decimal(r["spent"]) for p, r in rows.items() if p.startswith("tenant:")), Decimal(0))
    for ledger in levels.ledgers.values():
        ledger.backend.reset(spend=True)
    levels.close()
    return {"levels": rows, "overspend_usd": f"{total:f}", "ledger_spent_usd": f"{spent_all:f}"}


def run_agentroute(args: argparse.Namespace, upstream: str, work: Path) -> dict[str, Any]:
    import httpx

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    tenants = work / "tenants.yaml"
    tenants.write_text(tenants_yaml())
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "AGENTROUTE_BENCH_UPSTREAM": upstream, "AGENTROUTE_BENCH_KEY": "x",
           "OTEL_TRACES_EXPORTER": "none", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    log = work / "agentroute.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from agentroute.cli import run; run()", "serve", "serve_load:SERVED", "--port",
         str(port), "--workers", str(args.workers), "--tenants", str(tenants), "--ledger", args.redis,
         "--ledger-prefix", prefix, "--store", "none", "--log-level", "warning"],
        cwd=HERE, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        why = wait_ready(f"{url}/readyz", proc, args.start_timeout, log)
        if why:
            return {"skipped": f"agentroute serve did not start: {why}"}
        warm_up(url, "router/mock", "sk-bench-warm-w", 10 * args.workers)
        httpx.post(f"{upstream.removesuffix('/v1')}/reset")
        ks = keys()
        run = asyncio.run(load(url, args.requests, args.concurrency, "router/mock", lambda i: ks[i % len(ks)]))
        stats = httpx.get(f"{upstream.removesuffix('/v1')}/stats").json()
        metrics = httpx.get(f"{url}/metrics").text
    finally:
        stop(proc)
    out = summarize(run, args.latency)
    out.update(overspend_agentroute(args.redis, prefix))
    out["upstream_billed_usd"] = stats["usd"]
    out["upstream_calls"] = stats["calls"]
    out["upstream_by_model"] = stats["by_model"]
    out["violations_metric_one_worker"] = next((line.split()[-1] for line in metrics.splitlines()
                                                if line.startswith("agentroute_budget_violations_total")), None)
    return out


def run_litellm(args: argparse.Namespace, upstream: str, work: Path) -> dict[str, Any]:
    import httpx

    venv = Path(args.litellm_venv)
    exe = venv / "bin" / "litellm"
    if not exe.exists():
        return {"skipped": f"no LiteLLM proxy at {exe} (python3 -m venv {venv} && {venv}/bin/pip install "
                           "'litellm[proxy]')"}
    cfg = work / "litellm.yaml"
    p_in, p_out = PRICES["mock-large"]
    cfg.write_text(f"""model_list:
  - model_name: mock
    litellm_params:
      model: openai/mock-large
      api_base: {upstream}
      api_key: x
      input_cost_per_token: {p_in}
      output_cost_per_token: {p_out}
general_settings:
  master_key: sk-bench-master-0
""")
    budget = sum((Decimal(tb) for _, tb, _, _ in TENANTS), Decimal(0))
    # Without its database the proxy's only budget is the proxy-wide one: the tenants' budgets summed.
    nodb_cfg = work / "litellm-nodb.yaml"
    nodb_cfg.write_text(cfg.read_text() + f"litellm_settings:\n  max_budget: {budget}\n")
    # Under load its workers import for longer than uvicorn's worker health check allows: without a longer one they
    # are killed and restarted in a loop and the proxy never answers.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           "TIMEOUT_WORKER_HEALTHCHECK": str(int(args.start_timeout))}
    result: dict[str, Any] = {}
    # 1. With its database, as budgets need: virtual keys with max_budget.
    if args.litellm_db:
        port = free_port()
        log = work / "litellm-db.log"
        proc = subprocess.Popen([str(exe), "--config", str(cfg), "--port", str(port), "--num_workers",
                                 str(args.workers)], env={**env, "DATABASE_URL": args.litellm_db}, cwd=work,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)
        try:
            why = wait_ready(f"http://127.0.0.1:{port}/health/readiness", proc, 240, log)
            if why is None:
                r = httpx.post(f"http://127.0.0.1:{port}/key/generate", json={"max_budget": 0.01},
                               headers={"authorization": "Bearer sk-bench-master-0"}, timeout=30)
                why = None if r.status_code == 200 else f"/key/generate answered {r.status_code}: {r.text[:300]}"
        finally:
            stop(proc)
        if why is not None:
            result["budgets_skipped"] = ("LiteLLM's key budgets need its database (Prisma on PostgreSQL), which did "
                                         f"not start here: {why}")
        else:
            result["budgets_skipped"] = "a database run with keys and max_budget is not implemented in this script yet"
    else:
        result["budgets_skipped"] = "no --litellm-db given"
    # 2. Without a database: latency and throughput on the same upstream; it enforces no budget at all.
    port = free_port()
    log = work / "litellm.log"
    proc = subprocess.Popen([str(exe), "--config", str(nodb_cfg), "--port", str(port), "--num_workers",
                             str(args.workers)], env=env, cwd=work, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        why = wait_ready(f"{url}/health/liveliness", proc, args.start_timeout, log)
        if why:
            result["skipped"] = f"LiteLLM proxy did not start: {why}"
            return result
        warm_up(url, "mock", "sk-bench-master-0", 10 * args.workers)
        httpx.post(f"{upstream.removesuffix('/v1')}/reset")
        ks = keys()
        run = asyncio.run(load(url, args.requests, args.concurrency, "mock",
                               lambda i: (ks[i % len(ks)][1], "sk-bench-master-0")))  # labelled by our key
        stats = httpx.get(f"{upstream.removesuffix('/v1')}/stats").json()
    finally:
        stop(proc)
    result.update(summarize(run, args.latency))
    billed = Decimal(stats["usd"])
    warned = "will NOT be enforced" in log.read_text(errors="replace")
    result.update(proxy_levels(run, stats))
    result.update({"mode": "no database; litellm_settings.max_budget = the tenants' budgets summed"
                           + (" (LiteLLM warns it is not enforced without a database)" if warned else ""),
                   "upstream_billed_usd": f"{billed:f}",
                   "upstream_calls": stats["calls"], "tenant_budgets_usd": f"{budget:f}",
                   "spend_past_tenant_budgets_usd": f"{max(Decimal(0), billed - budget):f}"})
    return result


def proxy_levels(run: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """What the proxy spent at each of agentroute's levels, had it been given them (without its database it has no
    per-key budget): every request costs the same here (same prompt length, same reply), so a level's spend is its
    answered requests times the upstream's price per call."""
    calls = int(stats["calls"])
    per_call = Decimal(stats["usd"]) / calls if calls else Decimal(0)
    answered: dict[str, int] = {}
    for status, _, key in run["results"]:
        if status == 200:
            answered[key] = answered.get(key, 0) + 1
    rows, total = {}, Decimal(0)
    for t, tb, mb, kb in TENANTS:
        k0, k1 = answered.get(f"sk-bench-{t}-k0", 0), answered.get(f"sk-bench-{t}-k1", 0)
        for path, n, limit in ((f"tenant:{t}", k0 + k1, tb), (f"team:{t}/team", k1, mb), (f"key:{t}/team/k1", k1, kb)):
            spent = per_call * n
            over = max(Decimal(0), spent - Decimal(limit))
            total += over
            rows[path] = {"limit": limit, "spent": f"{spent:f}", "over": f"{over:f}"}
    return {"levels": rows, "overspend_usd": f"{total:f}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds the mock upstream takes per call")
    ap.add_argument("--redis", default=os.environ.get("AGENTROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--litellm-venv", default=os.environ.get("AGENTROUTE_LITELLM_PROXY_VENV",
                                                             "/work/.venv-litellm-proxy"))
    ap.add_argument("--litellm-db", default=os.environ.get("AGENTROUTE_LITELLM_DATABASE_URL"),
                    help="PostgreSQL URL for LiteLLM's database (its key budgets need one)")
    ap.add_argument("--skip-litellm", action="store_true")
    ap.add_argument("--start-timeout", type=float, default=300, help="seconds each server may take to start")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--upstream", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.upstream is not None:  # the mock upstream process
        import uvicorn

        uvicorn.run(upstream_app(args.latency), host="127.0.0.1", port=args.upstream, log_level="warning")
        return
    port = free_port()
    upstream = f"http://127.0.0.1:{port}/v1"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        up = subprocess.Popen([sys.executable, __file__, "--upstream", str(port), "--latency", str(args.latency)],
                              stdout=(work / "upstream.log").open("wb"), stderr=subprocess.STDOUT)
        try:
            why = wait_ready(f"http://127.0.0.1:{port}/stats", up, 60, work / "upstream.log")
            if why:
                raise SystemExit(f"mock upstream did not start: {why}")
            report: dict[str, Any] = {"config": {k: v for k, v in vars(args).items() if k != "upstream"},
                                      "tenants": TENANTS}
            report["agentroute"] = run_agentroute(args, upstream, work)
            report["litellm_proxy"] = ({"skipped": "--skip-litellm"} if args.skip_litellm
                                       else run_litellm(args, upstream, work))
        finally:
            stop(up)
    print_table(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=str))
        print(f"wrote {args.out}")


def print_table(report: dict[str, Any]) -> None:
    cols = ("overspend_usd", "added_ms_p50", "added_ms_p99", "throughput_rps", "answered", "statuses",
            "upstream_billed_usd")
    print(f"{'server':<16}" + "".join(f"{c:>22}" for c in cols))
    for name in ("agentroute", "litellm_proxy"):
        r = report[name]
        if "added_ms_p50" not in r:
            print(f"{name:<16} skipped: {r.get('skipped')}")
            continue
        over = r.get("overspend_usd")
        vals = [over, *(r.get(c) for c in cols[1:])]
        print(f"{name:<16}" + "".join(f"{v!s:>22}" for v in vals))
    for name in ("agentroute", "litellm_proxy"):
        levels = report[name].get("levels", {})
        over = [f"{p} +${r['over']} ({r['spent']} of {r['limit']})" for p, r in levels.items() if Decimal(r["over"])]
        if levels:
            print(f"{name} levels past their limit: {'; '.join(over) or 'none'}")
    lp = report["litellm_proxy"]
    if lp.get("budgets_skipped"):
        print(f"litellm budgets: {lp['budgets_skipped']}")


if __name__ == "__main__":
    main()
