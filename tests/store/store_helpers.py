"""Helpers of the store tests: private PostgreSQL schemas, and a TCP proxy that can cut a server off.

``Proxy(host, port)`` listens on a free local port and forwards each connection to ``host:port`` on an asyncio
loop in its own thread. ``cut()`` closes every open connection and refuses new ones (the server looks down);
``restore()`` lets connections through again: the outage a test needs, with the real server behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from typing import Any


def private_schema(base: str) -> tuple[str, str]:
    """A new PostgreSQL schema in the test database: ``(url whose search_path is it, schema name)``."""
    import psycopg

    schema = f"ar_store_{uuid.uuid4().hex[:12]}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{base.split('?', 1)[0]}?options=-csearch_path%3D{schema}", schema


def drop_schema(base: str, schema: str) -> None:
    """Drop a schema made by :func:`private_schema`."""
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Proxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.down = False
        self._writers: set[asyncio.StreamWriter] = set()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: Any = None

    def __enter__(self) -> Proxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, sock=self._sock)

    async def _stop(self) -> None:
        self._close_all()
        self._server.close()

    def _close_all(self) -> None:
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_w))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except Exception:
                pass
            finally:
                with contextlib.suppress(Exception):
                    w.transport.abort()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self._writers.discard(writer)
        self._writers.discard(up_w)

    def cut(self) -> None:
        """The server goes away: open connections drop, new ones are refused."""

        def go() -> None:
            self.down = True
            self._close_all()

        self.loop.call_soon_threadsafe(go)

    def restore(self) -> None:
        """The server is back."""
        self.loop.call_soon_threadsafe(lambda: setattr(self, "down", False))
