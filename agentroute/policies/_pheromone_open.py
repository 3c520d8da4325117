"""Opening a pheromone table: in process, or durable in the store (the SQL module is imported only then).

Kept apart from :mod:`agentroute.policies._pheromone_store` (the in-process table, which the SQL table extends) so
the two never import each other.
"""

from __future__ import annotations

from agentroute.policies._pheromone_store import PheromoneParams, PheromoneTable


def open_table(
    url: str | None = None,
    *,
    namespace: str = "default",
    params: PheromoneParams | None = None,
    record_events: bool = True,
    memory: bool = False,
) -> PheromoneTable:
    """A pheromone table: in process with ``memory=True``, else durable in the SQL store at ``url``.

    ``url`` defaults to ``AGENTROUTE_DATABASE_URL``, else the SQLite file ``agentroute.db``; a plain path is a
    SQLite file; PostgreSQL URLs (``postgresql+psycopg://...``) let many workers share one table. The durable
    table loads what is already stored, so a restarted worker resumes where the colony was.
    """
    if memory:
        return PheromoneTable(params, namespace=namespace)
    from agentroute.policies._pheromone_sql import SQLPheromoneTable

    return SQLPheromoneTable(url, namespace=namespace, params=params, record_events=record_events)


__all__ = ["open_table"]
