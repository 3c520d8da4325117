"""A local spool for rows the database could not take: appended while it is down, replayed once it is back.

Each exporter process owns one JSON-lines file per database (``<dir>/<url hash>-<pid>-<n>.jsonl``), holding an
exclusive ``flock`` on it while it lives. A batch is one line, written and ``fsync``-ed before the exporter reports
success, so a batch on disk survives a crash of the process. Replay reads the process's own file and every file
whose owner died (its lock can be taken), oldest first, and deletes a file once all its batches were written;
the store's inserts are idempotent, so a batch replayed twice adds nothing twice.

The directory is ``AGENTROUTE_SPOOL_DIR``, else ``$XDG_CACHE_HOME/agentroute/spool`` (``~/.cache/...``).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("agentroute.store")
Batch = dict[str, list[dict[str, Any]]]
_seq = itertools.count()


def spool_dir() -> Path:
    """Where spool files live (see the module docstring)."""
    env = os.environ.get("AGENTROUTE_SPOOL_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "agentroute" / "spool"


def _lock(f: IO[Any], *, block: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock: only this process's own file is ever replayed
        return block
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


def rows_in(batch: Batch) -> int:
    """How many rows a batch holds."""
    return sum(len(v) for v in batch.values())


class Spool:
    """The spool of one database URL in this process (thread-safety is the caller's: the exporter's lock)."""

    def __init__(self, url: str, directory: Path | None = None) -> None:
        self.dir = directory or spool_dir()
        self.prefix = hashlib.sha256(url.encode()).hexdigest()[:16]
        self._file: IO[str] | None = None
        self._path: Path | None = None
        self.pending = 0
        """Rows waiting in this process's own file."""

    def append(self, batch: Batch) -> None:
        """Write ``batch`` durably (one line, fsync-ed)."""
        if self._file is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._path = self.dir / f"{self.prefix}-{os.getpid()}-{next(_seq)}.jsonl"
            self._file = self._path.open("a", encoding="utf-8")
            _lock(self._file, block=True)
        self._file.write(json.dumps(batch, default=str, separators=(",", ":")) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.pending += rows_in(batch)

    def _orphans(self) -> Iterator[tuple[Path, IO[str]]]:
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob(f"{self.prefix}-*.jsonl"), key=lambda p: p.stat().st_mtime):
            if path == self._path:
                continue
            try:
                f = path.open("r+", encoding="utf-8")
            except OSError:
                continue
            if _lock(f, block=False):  # its owner is gone (or never locked it)
                yield path, f
            else:
                f.close()

    def has_orphans(self) -> bool:
        """True when a dead process left batches for this database."""
        for _path, f in self._orphans():
            f.close()
            return True
        return False

    def replay(self, write: Callable[[Batch], None]) -> int:
        """Write every spooled batch (own file, then those of dead processes); return the rows written.

        Stops at the first batch ``write`` raises on, leaving it and the rest spooled, and re-raises.
        """
        done = 0
        if self._file is not None and self._path is not None:
            self._file.flush()
            for batch in _read(self._path):
                write(batch)
                done += rows_in(batch)
            self._file.truncate(0)
            self._file.seek(0)
            self.pending = 0
        for path, f in self._orphans():
            with f:
                for batch in _read(path):
                    write(batch)
                    done += rows_in(batch)
                with contextlib.suppress(OSError):
                    path.unlink()
        return done

    def close(self) -> None:
        """Release this process's file (deleted when empty; kept, unlocked, for a later replay otherwise)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            if self._path is not None and self.pending == 0:
                with contextlib.suppress(OSError):
                    self._path.unlink()


def _read(path: Path) -> Iterator[Batch]:
    with path.open("r", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:  # a line cut by a crash mid-write: it was never reported as written
                log.warning("agentroute: skipping a torn line in the spool %s", path)


__all__ = ["Batch", "Spool", "rows_in", "spool_dir"]
