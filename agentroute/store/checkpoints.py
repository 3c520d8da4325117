"""A LangGraph checkpointer on the store's database (SQLite or PostgreSQL): what makes a task resumable.

``graph.compile(policy, checkpointer=SqlCheckpointer("sqlite:///runs.db"))`` (or ``checkpointer="sqlite:///runs.db"``)
saves every task's state after each finished step, in two tables of its own next to the traces
(``agentroute_checkpoints``, one row per checkpoint, and ``agentroute_checkpoint_writes``, the writes of steps that
finished inside a checkpoint's super-step). ``App.resume(task_id)`` reads the latest checkpoint back after a crash.
Both sync and async LangGraph calls work on one object (the async twins run the same SQL on a worker thread), so the
same checkpointer serves ``App.run`` and ``agentroute serve``.

Each write is one transaction, committed before LangGraph goes on: a process killed at any point leaves the last
finished step's checkpoint readable. The tables are created on first use (``CREATE TABLE IF NOT EXISTS``) and are
not part of the trace schema's version. This module never decides what a checkpoint means: that is LangGraph's
(:class:`~langgraph.checkpoint.base.BaseCheckpointSaver`) and the runtime's.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import random
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from sqlalchemy import Column, Engine, Integer, LargeBinary, MetaData, String, Table, Text, delete, select

from agentroute.store.engine import get_engine, upsert

_META = MetaData()
CHECKPOINTS = Table(
    "agentroute_checkpoints", _META,
    Column("thread_id", String(255), primary_key=True),
    Column("checkpoint_ns", String(255), primary_key=True, default=""),
    Column("checkpoint_id", String(64), primary_key=True),
    Column("parent_checkpoint_id", String(64), nullable=True),
    Column("type", String(32), nullable=True),
    Column("checkpoint", LargeBinary, nullable=False),
    Column("metadata", Text, nullable=False, default="{}"),
)
WRITES = Table(
    "agentroute_checkpoint_writes", _META,
    Column("thread_id", String(255), primary_key=True),
    Column("checkpoint_ns", String(255), primary_key=True, default=""),
    Column("checkpoint_id", String(64), primary_key=True),
    Column("task_id", String(255), primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("task_path", String(1024), nullable=False, default=""),
    Column("channel", String(255), nullable=False),
    Column("type", String(32), nullable=True),
    Column("value", LargeBinary, nullable=True),
)
_created: set[str] = set()
_create_lock = threading.Lock()


def _ids(config: RunnableConfig) -> tuple[str, str]:
    conf = config["configurable"]
    return str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))


class SqlCheckpointer(BaseCheckpointSaver[str]):
    """LangGraph checkpoints in the store at ``url`` (``None``: ``AGENTROUTE_DATABASE_URL`` or ``./agentroute.db``).

    Give ``engine`` to share one SQLAlchemy engine. Thread-safe; one object may serve many tasks at once.
    """

    def __init__(self, url: str | None = None, *, engine: Engine | None = None, serde: Any = None) -> None:
        super().__init__(serde=serde)
        self.engine = engine if engine is not None else get_engine(url)
        key = self.engine.url.render_as_string(hide_password=False)
        with _create_lock:
            if key not in _created:
                _META.create_all(self.engine, checkfirst=True)
                _created.add(key)

    # -- reading ---------------------------------------------------------------------------------------------------
    def _tuple(self, cx: Any, row: Any) -> CheckpointTuple:
        thread_id, ns, cid, parent = row.thread_id, row.checkpoint_ns, row.checkpoint_id, row.parent_checkpoint_id
        writes = cx.execute(
            select(WRITES.c.task_id, WRITES.c.channel, WRITES.c.type, WRITES.c.value, WRITES.c.task_path,
                   WRITES.c.idx)
            .where(WRITES.c.thread_id == thread_id, WRITES.c.checkpoint_ns == ns, WRITES.c.checkpoint_id == cid)
            .order_by(WRITES.c.task_path, WRITES.c.task_id, WRITES.c.idx)
        ).all()
        return CheckpointTuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}},
            self.serde.loads_typed((row.type, row.checkpoint)),
            json.loads(row.metadata) if row.metadata else {},
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent}}
            if parent else None,
            [(w.task_id, w.channel, self.serde.loads_typed((w.type, w.value))) for w in writes],
        )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or the thread's latest one."""
        thread_id, ns = _ids(config)
        q = select(CHECKPOINTS).where(CHECKPOINTS.c.thread_id == thread_id, CHECKPOINTS.c.checkpoint_ns == ns)
        cid = get_checkpoint_id(config)
        q = q.where(CHECKPOINTS.c.checkpoint_id == cid) if cid else \
            q.order_by(CHECKPOINTS.c.checkpoint_id.desc()).limit(1)
        with self.engine.connect() as cx:
            row = cx.execute(q).first()
            return self._tuple(cx, row) if row is not None else None

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of ``config``'s thread (every thread when ``None``), matching ``filter``."""
        q = select(CHECKPOINTS)
        if config is not None:
            thread_id, _ = _ids(config)
            q = q.where(CHECKPOINTS.c.thread_id == thread_id)
            if "checkpoint_ns" in config["configurable"]:
                q = q.where(CHECKPOINTS.c.checkpoint_ns == str(config["configurable"]["checkpoint_ns"]))
            cid = get_checkpoint_id(config)
            if cid:
                q = q.where(CHECKPOINTS.c.checkpoint_id == cid)
        if before is not None and (bid := get_checkpoint_id(before)):
            q = q.where(CHECKPOINTS.c.checkpoint_id < bid)
        q = q.order_by(CHECKPOINTS.c.checkpoint_id.desc())
        out: builtins.list[CheckpointTuple] = []
        with self.engine.connect() as cx:
            for row in cx.execute(q):
                meta = json.loads(row.metadata) if row.metadata else {}
                if filter and any(meta.get(k) != v for k, v in filter.items()):
                    continue
                out.append(self._tuple(cx, row))
                if limit is not None and len(out) >= limit:
                    break
        yield from out

    def threads(self) -> builtins.list[str]:
        """Every thread (task id) that has a checkpoint here."""
        with self.engine.connect() as cx:
            return [r[0] for r in cx.execute(select(CHECKPOINTS.c.thread_id).distinct())]

    # -- writing ---------------------------------------------------------------------------------------------------
    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        """Save ``checkpoint`` (one transaction) and return the config that names it."""
        thread_id, ns = _ids(config)
        type_, blob = self.serde.dumps_typed(checkpoint)
        row = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"],
               "parent_checkpoint_id": config["configurable"].get("checkpoint_id"), "type": type_,
               "checkpoint": blob,
               "metadata": json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False, default=str)}
        ins = upsert(self.engine, CHECKPOINTS).values(**row)
        keep = ("parent_checkpoint_id", "type", "checkpoint", "metadata")
        with self.engine.begin() as cx:
            cx.execute(ins.on_conflict_do_update(index_elements=["thread_id", "checkpoint_ns", "checkpoint_id"],
                                                 set_={k: ins.excluded[k] for k in keep}))
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        """Save the writes of a step that finished inside the checkpoint's super-step."""
        if not writes:
            return
        thread_id, ns = _ids(config)
        cid = str(config["configurable"]["checkpoint_id"])
        rows = []
        for idx, (channel, value) in enumerate(writes):
            type_, blob = self.serde.dumps_typed(value)
            rows.append({"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid, "task_id": task_id,
                         "idx": WRITES_IDX_MAP.get(channel, idx), "task_path": task_path, "channel": channel,
                         "type": type_, "value": blob})
        ins = upsert(self.engine, WRITES)
        keys = ["thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"]
        # special channels (errors, interrupts) replace what was there; ordinary writes are kept from the first try
        stmt = ins.on_conflict_do_update(index_elements=keys, set_={k: ins.excluded[k] for k in
                                                                    ("task_path", "channel", "type", "value")}) \
            if all(w[0] in WRITES_IDX_MAP for w in writes) else ins.on_conflict_do_nothing(index_elements=keys)
        with self.engine.begin() as cx:
            cx.execute(stmt, rows)

    def delete_thread(self, thread_id: str) -> None:
        """Forget every checkpoint and write of ``thread_id``."""
        with self.engine.begin() as cx:
            cx.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.thread_id == str(thread_id)))
            cx.execute(delete(WRITES).where(WRITES.c.thread_id == str(thread_id)))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Monotonic channel versions (the same scheme as LangGraph's own SQL savers)."""
        n = 0 if current is None else current if isinstance(current, int) else int(str(current).split(".")[0])
        return f"{n + 1:032}.{random.random():016}"

    # -- async twins: the same SQL on a worker thread, so an event loop never waits on the database ----------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """:meth:`get_tuple` off the event loop."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        """:meth:`list` off the event loop."""
        found = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for t in found:
            yield t

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        """:meth:`put` off the event loop."""
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        """:meth:`put_writes` off the event loop."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """:meth:`delete_thread` off the event loop."""
        await asyncio.to_thread(self.delete_thread, thread_id)


__all__ = ["CHECKPOINTS", "WRITES", "SqlCheckpointer"]
