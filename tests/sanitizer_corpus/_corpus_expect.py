"""What a corpus case expects, from its marker comments: ``finding`` and ``traffic`` (see ``__init__.py``).

A module of its own, imported by its plain name, so that a case runs both as part of the package and as a
script: ``python cli.py sanitize tests/sanitizer_corpus/race_on_shared.py``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

KINDS = ("race", "barrier_divergence", "out_of_bounds", "uninitialized_read")


def _caller_file(depth: int = 2) -> Path:
    return Path(sys._getframe(depth).f_globals["__file__"])


def marked(tag: str, path: Path | None = None) -> int:
    """The 1-based line of ``path`` (default: the caller's file) that ends with ``# <- TAG``; exactly one."""
    path = path or _caller_file()
    pattern = re.compile(rf"#\s*<-\s*{re.escape(tag)}\s*$")
    hits = [i for i, text in enumerate(path.read_text().splitlines(), 1) if pattern.search(text)]
    if len(hits) != 1:
        raise ValueError(f"{path.name}: marker '# <- {tag}' found {len(hits)} times, expected once")
    return hits[0]


def finding(kind: str, *tags: str, space=None, hazard=None, scope=None, severity="error") -> dict:
    """An expected finding at the lines marked ``tags`` in the caller's file. ``space``, ``hazard`` and
    ``scope`` are checked when given (None: not part of the expectation)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path = _caller_file()
    return {"kind": kind, "lines": sorted({marked(tag, path) for tag in tags}), "space": space,
            "hazard": hazard, "scope": scope, "severity": severity}


def traffic(tag: str, space: str, op: str, **figures) -> dict:
    """An expected memory-profile row: the line marked ``tag``, its space and op, and hand-counted figures
    (any of requests, sectors, sectors_per_request, wavefronts, bank_conflicts, ways)."""
    return {"line": marked(tag, _caller_file()), "space": space, "op": op, **figures}
