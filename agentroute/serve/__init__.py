"""Serve graphs and routers as an OpenAI-compatible endpoint, with tenants and hard hierarchical budgets.

``agentroute serve MODULE:OBJECT --tenants tenants.yaml`` (see ``docs/serving.md``), or in Python::

    from agentroute.serve import Router, create_app
    asgi = create_app({"support": app, "tiers": Router("tiers", tiers, policy)}, tenants="tenants.yaml")

Layout: :mod:`._tenants` (the tenants file, hashed keys), :mod:`._levels` (a ledger per tenant, team and key,
chained), :mod:`._targets` (what is served and the adapters to and from state), :mod:`._openai` (the wire
format), :mod:`._metrics` (Prometheus), :mod:`._app` (the Starlette routes), :mod:`.cli` (the command). This package
uses the library's public API only (``App.arun``, ``SharedBudget``, ``Ledger`` parents, the ledger backends, the
store's queries, ``RunHooks``) and imports Starlette, so nothing in the core imports it.
"""

from typing import Any

# Loaded on first use: `agentroute --help` imports agentroute.serve.cli, which must not pull in Starlette.
_LAZY = {
    "BUDGET_HEADER": "_app", "TASK_HEADER": "_app", "ServeConfig": "_app", "create_app": "_app",
    "tenant_tag": "_app", "KeyBudget": "_levels", "Levels": "_levels", "Router": "_targets", "Served": "_targets",
    "default_input": "_targets", "default_output": "_targets", "KeyEntry": "_tenants", "Level": "_tenants",
    "Tenants": "_tenants", "hash_key": "_tenants", "load_tenants": "_tenants", "parse_tenants": "_tenants",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentroute.serve' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"agentroute.serve.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BUDGET_HEADER",
    "TASK_HEADER",
    "KeyBudget",
    "KeyEntry",
    "Level",
    "Levels",
    "Router",
    "ServeConfig",
    "Served",
    "Tenants",
    "create_app",
    "default_input",
    "default_output",
    "hash_key",
    "load_tenants",
    "parse_tenants",
    "tenant_tag",
]
