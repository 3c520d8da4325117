"""The ASGI app (Starlette): OpenAI-compatible chat completions over budgeted graphs, per tenant.

Endpoints: ``POST /v1/chat/completions`` (JSON or server-sent events), ``GET /v1/models``, ``GET /v1/usage``,
``GET /v1/traces/{task_id}``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``. Every request is authenticated
by its bearer key (:mod:`._tenants`), runs as one task of a served app on the key's ledger chain (:mod:`._levels`),
and answers with ``x-agentroute-task-id``. A request that finds a level of its hierarchy exhausted gets 429 with
what remains; ``x-agentroute-budget-usd`` may lower the task's own USD limit and never raises it (a higher value
is ignored: the limit stays at the tightest per-task limit of the key's levels).

The app never spends outside a task's ledger: everything a request costs is reserved by the runtime before it is
incurred, so the budget guarantee of :mod:`agentroute.budget` is the server's guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from agentroute.budget import Budget, SharedBudget, to_decimal
from agentroute.errors import AgentRouteError, ConfigError, PolicyError, ProviderError, RunError
from agentroute.records import HookList, RunHooks, RunResult
from agentroute.runtime import App
from agentroute.serve._levels import Levels
from agentroute.serve._metrics import Metrics, MetricsHooks
from agentroute.serve._openai import (
    DONE,
    RequestError,
    check_body,
    chunk,
    completion,
    error_event,
    event_chunk,
    sse_events,
)
from agentroute.serve._targets import Target, load_object, load_policy, load_provider, resolve
from agentroute.serve._tenants import KeyEntry, Level, Tenants, load_tenants, tightest

log = logging.getLogger("agentroute.serve")

BUDGET_HEADER = "x-agentroute-budget-usd"
TASK_HEADER = "x-agentroute-task-id"
ENV_CONFIG = "AGENTROUTE_SERVE_CONFIG"
_NO_RETRY = {"x-should-retry": "false"}  # the openai client would otherwise retry a 429 that cannot succeed


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``agentroute serve`` was given: enough for each worker process to build the same app."""

    target: str
    policy: str | None = None
    provider: str | None = None
    tenants: str | None = None
    store: str | None = None
    """Trace store URL; ``"none"`` turns tracing off; ``None``: ``AGENTROUTE_DATABASE_URL`` or ``./agentroute.db``."""
    ledger: str | None = None
    ledger_prefix: str = "serve"
    owner: str | None = None
    """Who owns the tasks this server starts (saved with their checkpoints): it resumes only its own on start."""


def tenant_tag(tenant: str) -> str:
    """The prefix of every task id of ``tenant``: how the server knows who owns a trace (no schema change)."""
    return hashlib.sha256(f"agentroute-tenant:{tenant}".encode()).hexdigest()[:12]


def _open_tenants() -> Tenants:
    from agentroute.serve._tenants import KeyEntry as _Entry

    level = Level("tenant", "local", "tenant:local", Budget(), Budget(), 0)
    return Tenants({"": _Entry("local", None, "local", (level,))}, {level.path: level}, "<no tenants file>")


class Server:
    """The state behind the routes: served targets, tenants, ledgers, metrics, tracing."""

    def __init__(self, targets: Mapping[str, Target], *, tenants: Tenants | None, ledger: str | None,
                 store: str | None, ledger_prefix: str = "serve", owner: str | None = None) -> None:
        self.targets = dict(targets)
        self.owner = owner or socket.gethostname()
        self.open = tenants is None
        self.tenants = tenants if tenants is not None else _open_tenants()
        self.levels = Levels(self.tenants, ledger, prefix=ledger_prefix)
        self.metrics = Metrics()
        self.started = int(time.time())
        self.tracing: Any = None
        self.store_url: str | None = None
        self._engine: Any = None
        if store != "none":
            from agentroute.store import resolve_url
            from agentroute.telemetry import configure_tracing

            self.store_url = resolve_url(store)
            self.tracing = configure_tracing(store_url=self.store_url)
        seen: set[int] = set()
        for t in self.targets.values():
            if id(t.app) not in seen:
                seen.add(id(t.app))
                self._hook(t.app)
        if self.open:
            log.warning("agentroute serve: no tenants file; every request is accepted, unbudgeted, as tenant 'local'")

    def _hook(self, app: App) -> None:
        from agentroute.telemetry import OTelHooks

        old = app.hooks
        existing: list[RunHooks] = list(old.hooks) if isinstance(old, HookList) else [old] if old else []
        added: list[RunHooks] = [MetricsHooks(self.metrics)]
        if self.tracing is not None and not any(isinstance(h, OTelHooks) for h in existing):
            added += list(self.tracing.hooks)
        app.hooks = HookList([*existing, *added])

    # -- per request --------------------------------------------------------------------------------------------
    def auth(self, request: Request) -> KeyEntry:
        """The caller's key entry, or 401 in the OpenAI error shape."""
        if self.open:
            return next(self.tenants.entries())
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        entry = self.tenants.lookup(key.strip()) if scheme.lower() == "bearer" else None
        if entry is None:
            msg = "missing API key: send Authorization: Bearer <key>" if not header else "incorrect API key provided"
            raise RequestError(401, msg, code="invalid_api_key", headers=_NO_RETRY)
        return entry

    def target(self, model: str) -> Target:
        """The served target named by a request's ``model`` (its id, or its bare name when unambiguous)."""
        t = self.targets.get(model)
        if t is None:
            named = [x for x in self.targets.values() if x.name == model]
            t = named[0] if len(named) == 1 else None
        if t is None:
            raise RequestError(404, f"the model {model!r} does not exist; served: {', '.join(self.targets)}",
                               code="model_not_found", param="model")
        return t

    def per_task(self, entry: KeyEntry, target: Target, header: str | None) -> Budget:
        """The task's own limit: the tightest of the key's levels and the app's default, lowered by the header."""
        default = target.app.budget
        own = default.per_task if isinstance(default, SharedBudget) else default if default is not None else Budget()
        cap = tightest(entry.per_task, own)
        if header is None:
            return cap
        try:
            usd = to_decimal(header, name=BUDGET_HEADER)
        except ConfigError as e:
            raise RequestError(400, f"{BUDGET_HEADER}: {e}", param=BUDGET_HEADER) from None
        if cap.usd is not None and usd >= cap.usd:
            return cap  # a request may lower its budget, never raise it
        return Budget(usd=usd, tokens=cap.tokens, steps=cap.steps, seconds=cap.seconds)

    def budget_error(self, entry: KeyEntry, dimension: str, per_task: Budget, task_id: str | None) -> RequestError:
        """429 with what is left at every level."""
        levels = self.levels.usage(entry)
        limited = [lv for lv in levels if dimension in lv["remaining"]]
        where = min(limited, key=lambda lv: Decimal(str(lv["remaining"][dimension])), default=None)
        at = f" at {where['level']} {where['name']!r}" if where else " for this task"
        headers = dict(_NO_RETRY)
        if task_id:
            headers[TASK_HEADER] = task_id
        return RequestError(
            429, f"budget exhausted{at} ({dimension}); see GET /v1/usage", type="insufficient_quota",
            code="budget_exhausted", extra={"budget": {"dimension": dimension, "levels": levels,
                                                       "per_task": {k: v for k, v in per_task.as_dict().items()
                                                                    if v is not None}}},
            headers=headers,
        )

    async def io(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a ledger or store read off the event loop unless the ledgers live in this process."""
        if self.levels.kind == "memory":
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    # -- routes -------------------------------------------------------------------------------------------------
    async def chat(self, request: Request) -> Response:
        started = time.perf_counter()
        label, status = "", 500
        try:
            entry = self.auth(request)
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RequestError(400, "the request body is not valid JSON") from None
            model, _, stream, include_usage = check_body(body)
            target = self.target(model)
            label = target.model_id
            per_task = self.per_task(entry, target, request.headers.get(BUDGET_HEADER))
            dim = await self.io(self.levels.exhausted, entry)
            if dim is not None:
                raise self.budget_error(entry, dim, per_task, None)
            response = await self._run(entry, target, body, per_task, stream, include_usage)
            status = response.status_code
            return response
        except RequestError as e:
            status = e.status
            return JSONResponse(e.body, status_code=e.status, headers=e.headers)
        finally:
            self.metrics.inc("agentroute_requests_total", model=label, status=str(status))
            self.metrics.observe(time.perf_counter() - started, model=label)

    async def _run(self, entry: KeyEntry, target: Target, body: dict[str, Any], per_task: Budget, stream: bool,
                   include_usage: bool) -> Response:
        task_id = f"{tenant_tag(entry.tenant)}-{uuid.uuid4().hex}"
        headers = {TASK_HEADER: task_id}
        try:
            inputs = target.to_input(body)
        except Exception as e:
            raise RequestError(400, f"the request does not fit {target.model_id}: {e}", headers=headers) from None
        if stream:
            return StreamingResponse(self._live(entry, target, inputs, per_task, task_id, include_usage),
                                     media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"})
        try:
            result = await target.app.arun(inputs, budget=self.levels.budget_for(entry, per_task), task_id=task_id,
                                           on_exhausted="truncate", labels=self.labels(entry, target))
        except RunError as e:
            if isinstance(e.result, RunResult):
                self._account(entry, e.result)
            raise _failed(task_id, e, headers) from None
        except AgentRouteError as e:
            raise RequestError(500, f"task {task_id} could not run: {e}", type="api_error", code="config_error",
                               headers=headers) from None
        self._account(entry, result)
        text = target.to_output(result.state)
        if result.truncated and result.reason.startswith("budget") and not text:
            raise self.budget_error(entry, result.reason.partition(":")[2] or "usd", per_task, task_id)
        headers["x-agentroute-spent-usd"] = f"{result.spent.known_usd:f}"
        if result.spent.unknown_usd:
            headers["x-agentroute-unknown-cost-calls"] = str(result.spent.unknown_usd)
        if result.violations:  # the provider spent past a reservation: charged in full and said so
            headers["x-agentroute-status"] = "overrun"
        if result.truncated:
            headers["x-agentroute-truncated"] = result.reason
        return JSONResponse(completion(result, target.model_id, text), headers=headers)

    async def _live(self, entry: KeyEntry, target: Target, inputs: dict[str, Any], per_task: Budget, task_id: str,
                    include_usage: bool) -> AsyncIterator[str]:
        """A streamed completion: the task's step and decision events as they happen, then its text, usage, DONE.

        The status (200) is sent before the task runs, so what would have been an error status comes as an error
        event, which the ``openai`` client raises as an ``APIError``.
        """
        created, model = int(time.time()), target.model_id
        yield chunk(task_id, created, model, {"role": "assistant", "content": ""}, None)
        result: RunResult | None = None
        try:
            async for ev in target.app.astream(inputs, budget=self.levels.budget_for(entry, per_task),
                                               task_id=task_id, labels=self.labels(entry, target)):
                if ev.kind == "end":
                    result = ev.record
                else:
                    yield event_chunk(task_id, created, model, ev.as_dict())
        except AgentRouteError as e:
            yield error_event(RequestError(500, f"task {task_id} could not run: {e}", type="api_error",
                                           code="config_error").body)
            yield DONE
            return
        assert result is not None
        self._account(entry, result)
        if isinstance(result.error, RunError):
            yield error_event(_failed(task_id, result.error, {}).body)
            yield DONE
            return
        text = target.to_output(result.state)
        if result.truncated and result.reason.startswith("budget") and not text:
            yield error_event(self.budget_error(entry, result.reason.partition(":")[2] or "usd", per_task,
                                                task_id).body)
            yield DONE
            return
        for piece in sse_events(result, model, text, include_usage=include_usage, created=created, role=False):
            yield piece

    def labels(self, entry: KeyEntry, target: Target) -> dict[str, str]:
        """What a task's checkpoints keep of its request: this server, the key's level path, the served model."""
        return {"owner": self.owner, "key": entry.levels[0].path, "model": target.model_id}

    def resume_unfinished(self) -> list[RunResult]:
        """Finish every checkpointed task this server (its ``owner``) started and did not finish, e.g. before a crash.

        Each resumes on its key's ledger chain with the per-task limit it started with, its spend carried over
        (:meth:`App.resume`). A task whose model or key is no longer served is left as it is, with a warning.
        """
        from agentroute import _resume

        done: list[RunResult] = []
        apps = {id(t.app): t.app for t in self.targets.values() if t.app.langgraph.checkpointer}
        for app in apps.values():
            for task_id, labels in app.unfinished(owner=self.owner).items():
                target = self.targets.get(labels.get("model", ""))
                entry = next((e for e in self.tenants.entries() if e.levels[0].path == labels.get("key")), None)
                saved = _resume.read(app.langgraph, task_id)
                if target is None or entry is None or saved is None:
                    log.warning("agentroute serve: task %s is unfinished, but its model or key is no longer served; "
                                "left as it is", task_id)
                    continue
                per_task = saved.limits() or self.per_task(entry, target, None)
                try:
                    result = app.resume(task_id, budget=self.levels.budget_for(entry, per_task),
                                        on_exhausted="truncate")
                except RunError as e:
                    if not isinstance(e.result, RunResult):
                        raise
                    result = e.result
                self._account(entry, result)
                log.warning("agentroute serve: resumed task %s (%s; spent %s)", task_id, result.reason,
                            result.spent.as_dict())
                done.append(result)
        return done

    def _account(self, entry: KeyEntry, result: RunResult) -> None:
        if result.spent.known_usd:  # the known part: a call of unknown price is flagged on the task, never read as 0
            self.metrics.inc("agentroute_spend_usd_total", result.spent.known_usd, tenant=entry.tenant)
        self.metrics.inc("agentroute_tokens_total", result.spent.tokens, tenant=entry.tenant)
        if result.truncated:
            self.metrics.inc("agentroute_truncated_total", reason=result.reason)

    async def models(self, request: Request) -> Response:
        self.auth(request)
        data = [{"id": mid, "object": "model", "created": self.started, "owned_by": "agentroute",
                 "kind": t.kind} for mid, t in self.targets.items()]
        return JSONResponse({"object": "list", "data": data})

    async def usage(self, request: Request) -> Response:
        entry = self.auth(request)
        levels = await self.io(self.levels.usage, entry)
        per_task = {k: v for k, v in entry.per_task.as_dict().items() if v is not None}
        return JSONResponse({"object": "usage", "tenant": entry.tenant, "team": entry.team, "key": entry.key,
                             "per_task": per_task, "levels": levels})

    async def trace(self, request: Request) -> Response:
        entry = self.auth(request)
        task_id = str(request.path_params["task_id"])
        missing = RequestError(404, f"no task {task_id!r} for this key's tenant", code="task_not_found")
        if not task_id.startswith(tenant_tag(entry.tenant) + "-") or self.store_url is None:
            raise missing
        tree = await asyncio.to_thread(self._tree, task_id)
        if (tree is None or tree.get("status") == "running") and self.tracing is not None:
            # its spans (or its end) may still sit in this worker's export queue
            await asyncio.to_thread(self.tracing.flush)
            tree = await asyncio.to_thread(self._tree, task_id)
        if tree is None:
            raise missing
        return JSONResponse(tree)

    def _tree(self, task_id: str) -> dict[str, Any] | None:
        from agentroute.errors import StoreError
        from agentroute.store.queries import open_store, task_tree

        try:
            if self._engine is None:
                self._engine = open_store(self.store_url)
            tree = task_tree(self._engine, task_id)
        except StoreError:
            return None
        if tree.task.task_id != task_id:  # a prefix match is someone else's business
            return None
        return _tree_json(tree)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        try:
            first = next(iter(self.levels.ledgers.values()))
            await self.io(first.backend.totals)
        except Exception as e:
            return JSONResponse({"status": "unavailable", "ledger": f"{type(e).__name__}: {e}"}, status_code=503)
        return JSONResponse({"status": "ready", "ledger": self.levels.kind, "models": list(self.targets)})

    async def prometheus(self, request: Request) -> Response:
        over = await self.io(self.levels.overspent)
        text = self.metrics.render() + (
            "# HELP agentroute_levels_overspent Budget levels whose spend is past their limit (always 0).\n"
            f"# TYPE agentroute_levels_overspent gauge\nagentroute_levels_overspent {len(over)}.0\n")
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    def close(self) -> None:
        """Flush traces and close the ledgers' connections."""
        if self.tracing is not None:
            self.tracing.shutdown()
        self.levels.close()


def _failed(task_id: str, e: RunError, headers: Mapping[str, str]) -> RequestError:
    status, code = (502, "provider_error") if isinstance(e, ProviderError) else (
        500, "policy_error" if isinstance(e, PolicyError) else "task_error")
    return RequestError(status, f"task {task_id} failed: {e}", type="api_error", code=code, headers=headers)


def _row(row: Any, drop: tuple[str, ...] = ("id", "span_id")) -> dict[str, Any]:
    d = row.model_dump() if hasattr(row, "model_dump") else asdict(row)
    return {k: v for k, v in d.items() if k not in drop}


def _tree_json(tree: Any) -> dict[str, Any]:
    """A task's decision tree: agent choices between steps, and per step its decisions and model calls."""
    task = _row(tree.task, drop=("trace_id",))
    steps = [{**_row(s), "decisions": [_row(d) for d in tree.decisions_at(s.step, agent_choice=False)],
              "calls": [_row(c) for c in tree.calls_at(s.step)]} for s in tree.steps]
    routes = [_row(d) for d in tree.decisions if d.kind == "agent"]
    return {"object": "task", **task, "routes": routes, "steps": steps}


def create_app(served: Any, *, tenants: Tenants | str | None = None, ledger: str | None = None,
               store: str | None = None, policy: Any = None, provider: Any = None,
               ledger_prefix: str = "serve", owner: str | None = None) -> Starlette:
    """The ASGI app serving ``served`` (an App, AgentGraph, Router, Served, or a dict of them).

    ``tenants`` is a :class:`Tenants` or a path to a tenants file (``None``: open, unbudgeted, one tenant);
    ``ledger`` is ``None`` (this process), ``redis://...`` or an SQL URL; ``store`` is the trace store URL
    (``"none"``: no tracing). ``policy`` and ``provider`` compile a served :class:`AgentGraph`. ``owner`` names
    this server in its tasks' checkpoints (default: the host name); ``app.state.agentroute.resume_unfinished()``
    finishes the ones a crash interrupted (``agentroute serve`` calls it before it listens).
    """
    loaded = load_tenants(tenants) if isinstance(tenants, str | os.PathLike) else tenants
    server = Server(resolve(served, policy=policy, provider=provider), tenants=loaded, ledger=ledger, store=store,
                    ledger_prefix=ledger_prefix, owner=owner)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            server.close()

    async def guard(request: Request, handler: Callable[[Request], Any]) -> Response:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except RequestError as e:
            return JSONResponse(e.body, status_code=e.status, headers=e.headers)

    def route(path: str, handler: Callable[[Request], Any], methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await guard(request, handler)

        return Route(path, endpoint, methods=methods)

    app = Starlette(routes=[
        route("/v1/chat/completions", server.chat, ["POST"]),
        route("/chat/completions", server.chat, ["POST"]),
        route("/v1/models", server.models, ["GET"]),
        route("/v1/usage", server.usage, ["GET"]),
        route("/v1/traces/{task_id}", server.trace, ["GET"]),
        route("/healthz", server.healthz, ["GET"]),
        route("/readyz", server.readyz, ["GET"]),
        route("/metrics", server.prometheus, ["GET"]),
    ], lifespan=lifespan)
    app.state.agentroute = server
    return app


def app_from_config(config: ServeConfig) -> Starlette:
    """Build the app from a :class:`ServeConfig` (what every worker process does)."""
    served = load_object(config.target)
    return create_app(served, tenants=config.tenants, ledger=config.ledger, store=config.store,
                      policy=load_policy(config.policy), provider=load_provider(config.provider),
                      ledger_prefix=config.ledger_prefix, owner=config.owner)


def app_from_env() -> Starlette:
    """The uvicorn factory of each worker: the config comes in ``AGENTROUTE_SERVE_CONFIG`` (JSON)."""
    raw = os.environ.get(ENV_CONFIG)
    if not raw:
        raise ConfigError(f"{ENV_CONFIG} is not set", hint="start workers with `agentroute serve`")
    return app_from_config(ServeConfig(**json.loads(raw)))


__all__ = ["BUDGET_HEADER", "TASK_HEADER", "ServeConfig", "Server", "app_from_config", "app_from_env",
           "create_app", "tenant_tag"]
