"""Read the fenced code blocks of README.md and docs/*.md: shell commands (one per logical line) and Python snippets.

A shell block (```bash, ```console, ```sh) is split into commands: comments and blank lines dropped, ``\\``
continuations joined, a here-document kept with the command that opens it. A Python block may be preceded by an
HTML comment that tells the docs test how to treat it (invisible on GitHub and in the built site):

* ``<!-- docs-test: continue ... -->``: run in the namespace of the Python block before it;
* ``<!-- docs-test: twin tests/x.py::test_y ... -->``: not run here; that test runs the same thing, smaller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELL = ("bash", "console", "sh", "shell")
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"<!--\s*docs-test:\s*(\w+)\s*([^\s]*)")
_HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)'?\"?")


@dataclass(frozen=True)
class Item:
    """One shell command or one Python block of a page, where it is, and any docs-test mark before it."""

    page: str
    line: int
    kind: str  # "shell" or "python"
    text: str
    mark: str = ""
    mark_arg: str = ""

    @property
    def where(self) -> str:
        """``page:line``."""
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md and every page of docs/ (the API reference pages hold no commands; ``_*.md`` are drafts)."""
    return [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if not p.name.startswith("_"))]


def _commands(page: str, start: int, lines: list[str]) -> list[Item]:
    out: list[Item] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        first = start + i
        stripped = line.strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        parts = [line.rstrip()]
        while parts[-1].endswith("\\") and i < len(lines):
            parts[-1] = parts[-1][:-1].rstrip()
            parts.append(lines[i].strip())
            i += 1
        cmd = " ".join(p.strip() for p in parts)
        m = _HEREDOC.search(cmd)
        if m:  # keep the here-document's body, up to its terminator, with the command
            body = []
            while i < len(lines) and lines[i].strip() != m.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            cmd = "\n".join([cmd, *body, m.group(1)])
        out.append(Item(page, first, "shell", cmd))
    return out


def items(path: Path) -> list[Item]:
    """The commands and Python blocks of one page, in page order."""
    page = str(path.relative_to(REPO))
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Item] = []
    lang: str | None = None
    body: list[str] = []
    start = 0
    mark = ("", "")
    for n, line in enumerate(lines, 1):
        fence = _FENCE.match(line.strip()) if line.strip().startswith("```") else None
        if lang is None and fence:
            lang, body, start = (fence.group(1) or "text"), [], n + 1
            prev = next((lines[k].strip() for k in range(n - 2, -1, -1) if lines[k].strip()), "")
            m = _MARK.search(prev)
            mark = (m.group(1), m.group(2)) if m else ("", "")
        elif lang is not None and line.strip() == "```":
            if lang in SHELL:
                out.extend(_commands(page, start, body))
            elif lang == "python":
                out.append(Item(page, start, "python", "\n".join(body), *mark))
            lang = None
        elif lang is not None:
            body.append(line)
    return out


def all_items() -> list[Item]:
    """Every command and Python block of every page."""
    return [it for p in pages() for it in items(p)]


__all__ = ["REPO", "Item", "all_items", "items", "pages"]
