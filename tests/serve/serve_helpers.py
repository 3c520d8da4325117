"""What the serve tests serve: an async two-agent support graph and a bare router, offline, and tenants."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

import agentroute as ar
from agentroute.serve import Router, parse_tenants

TIERS = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]

TENANTS_YAML = """\
tenants:
  - name: acme
    budget: {usd: "0.05"}
    per_task: {usd: "0.01"}
    teams:
      - name: ml
        budget: {usd: "0.02"}
        keys:
          - {name: ci, key: "sk-acme-ci-0001", budget: {usd: "0.01"}}
    keys:
      - {name: admin, key: "sk-acme-admin-01"}
  - name: globex
    budget: {usd: "0.05"}
    keys:
      - {name: main, key: "sk-globex-main-1"}
"""


def support_graph() -> ar.AgentGraph:
    graph = ar.AgentGraph("support")

    @graph.agent(tiers=TIERS)
    async def triage(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        reply = await ctx.acomplete([{"role": "user", "content": state["input"]}], max_tokens=200)
        return {"draft": reply.text}

    @graph.agent(tiers=TIERS)
    async def expert(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        reply = await ctx.acomplete([{"role": "user", "content": state["draft"]}], max_tokens=300)
        return {"answer": reply.text}

    graph.start("triage")
    graph.route("triage", to=["expert", ar.END])
    return graph


def served(seed: int = 0, *, realtime: bool = False) -> dict[str, Any]:
    """A graph and a router; both offline through LiteLLM (``realtime`` sleeps for the simulated latency)."""
    sim = ar.providers.Simulated(seed=seed, realtime=realtime)
    app = support_graph().compile(policy=ar.policies.Strongest(), provider=sim)
    return {"support": app, "tiers": Router("tiers", TIERS, ar.policies.Strongest(), sim, max_tokens=256)}


def tenants(text: str = TENANTS_YAML) -> Any:
    return parse_tenants(text, source="tenants.yaml")


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """A local port that stays this test's until the block ends, for a server in another process to listen on.

    Binding port 0, closing the socket and handing the number on is a race: another test (a pytest-xdist worker)
    can be given the same port before the server binds it. Here the socket stays bound, with SO_REUSEADDR and not
    listening, for the whole block: the kernel gives the port to no one else, while a server that sets
    SO_REUSEADDR too (uvicorn does) may still listen on it, also when it starts again on the same port.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


class UvicornThread:
    """A real uvicorn server in a thread, on a socket bound here to a free port (no window for another test)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


# `agentroute serve serve_helpers:SERVED` from this folder (the CLI test)
SERVED = served()
HERE = Path(__file__).parent


def wait_ready(proc: subprocess.Popen[bytes], url: str, seconds: float) -> None:
    """Wait until ``agentroute serve`` at ``url`` answers /readyz, failing with its output if it exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "serve exited")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("agentroute serve did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server process, killing it when it does not exit within 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
