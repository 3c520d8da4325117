"""The App the Ray tests build on each worker (``factory=functools.partial(make_app, store_url)``)."""

import agentroute as ar
from agentroute.examples import support_graph


def make_app(store_url=None, seed=0):
    hooks = ()
    if store_url:
        from agentroute.telemetry import configure_tracing

        hooks = configure_tracing(exporters="agentroute", store_url=store_url).hooks
    return support_graph().compile(policy=ar.policies.Strongest(), provider=ar.providers.Simulated(seed=seed),
                                   hooks=hooks)
