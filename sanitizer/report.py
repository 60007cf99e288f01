"""What a sanitized run found: findings and memory rows per launch, as JSON and as compute-sanitizer text.

The JSON is the contract of ``cli.py sanitize --json`` (issue 26), key for key; everything else here is for
people (``Report.text``) and for graders (``Report.first_finding_line``, ``Report.summary``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
KINDS = ("race", "barrier_divergence", "out_of_bounds", "uninitialized_read")


@dataclass
class Finding:
    """One kind of defect at one pair (or one) of source lines, with how often it happened in the launch."""

    kind: str  # race | barrier_divergence | out_of_bounds | uninitialized_read
    severity: str  # error | warning | info
    space: str | None  # shared | global | local | None
    hazard: str | None  # RAW | WAR | WAW | None
    scope: str | None  # intra-warp | inter-warp | inter-block | None
    file: str
    lines: list[int]
    count: int
    example: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "severity": self.severity, "space": self.space, "hazard": self.hazard,
                "scope": self.scope, "file": self.file, "lines": list(self.lines), "count": self.count,
                "example": self.example}

    def headline(self) -> str:
        """compute-sanitizer's first line for this finding, e.g. 'Race reported between Write access at
        k.py:12 and Read access at k.py:15'."""
        where = [f"{_short(self.file)}:{line}" for line in self.lines]
        if self.kind == "race":
            first, second = {"RAW": ("Write", "Read"), "WAR": ("Read", "Write"), "WAW": ("Write", "Write")}[self.hazard]
            return (f"Race reported between {first} access at {where[0]} and {second} access at "
                    f"{where[-1]} [{self.hazard}, {self.space}, {self.scope}]")
        if self.kind == "barrier_divergence":
            return f"Barrier error detected: divergent threads in block at {', '.join(where) or 'the kernel'}"
        if self.kind == "out_of_bounds":
            return f"Invalid __{self.space}__ access at {where[0]}: index out of bounds"
        return f"Uninitialized __{self.space}__ memory read at {where[0]}"

    def hint(self) -> str:
        """The usual fix, as a question (the sanitizer sees the symptom, not the intent)."""
        first, last = self.lines[0] if self.lines else "?", self.lines[-1] if self.lines else "?"
        if self.kind == "race":
            if self.scope == "inter-block":
                return ("blocks are never ordered: split the kernel into two launches, or make the updates "
                        "atomic?")
            if self.severity == "info":
                return "every thread writes the same value: harmless on a GPU, but one writer would do"
            if self.hazard == "RAW":
                return f"a cuda.syncthreads() after the write at line {first}, before the read at line {last}?"
            if self.hazard == "WAR":
                return (f"a cuda.syncthreads() after the read at line {first}, before the write at line {last} "
                        "(at the end of a loop that reloads a tile?)")
            return "one writer per element, or cuda.atomic for a shared total?"
        if self.kind == "barrier_divergence" and "watchdog" in self.example:
            return ("never wait for another block (or a thread that cannot run first): split the work into two "
                    "launches")
        if self.kind == "barrier_divergence":
            return ("every thread of a block must reach the same cuda.syncthreads(): guard the work with the "
                    "condition, not the barrier (no return before it)")
        if self.kind == "out_of_bounds":
            return f"a bounds guard (if 0 <= i < n) around the access at line {first}?"
        if self.space == "shared":
            return "write the element (or the whole tile) before a cuda.syncthreads() that precedes this read?"
        return "initialize the device array (cuda.to_device, copy_to_device) or write it in an earlier kernel?"

    def one_line(self) -> str:
        """Severity, headline and the example in one line: what a grader prints first."""
        return f"{self.severity}: {self.headline()}: {self.example}"


@dataclass
class MemoryRow:
    """Nsight Compute's view of one source line's loads or stores (summed over the launch)."""

    file: str
    line: int
    space: str  # global | shared
    op: str  # load | store
    requests: int = 0
    sectors: int = 0
    wavefronts: int = 0
    ways: int = 0

    @property
    def sectors_per_request(self) -> float:
        return self.sectors / self.requests if self.requests else 0.0

    @property
    def bank_conflicts(self) -> int:
        return self.wavefronts - self.requests if self.space == "shared" else 0

    def to_json(self) -> dict:
        shared = self.space == "shared"
        return {"file": self.file, "line": self.line, "space": self.space, "op": self.op,
                "requests": self.requests, "sectors": 0 if shared else self.sectors,
                "sectors_per_request": 0.0 if shared else round(self.sectors_per_request, 4),
                "wavefronts": self.wavefronts if shared else 0, "bank_conflicts": self.bank_conflicts,
                "ways": self.ways if shared else 0}


@dataclass
class Launch:
    """One watched kernel launch: its shape, what was found (capped), and its memory profile."""

    kernel: str
    grid: tuple
    block: tuple
    findings: list = field(default_factory=list)
    memory: list = field(default_factory=list)
    dropped: int = 0  # findings beyond the cap, counted but not kept
    ended_early: bool = False  # the watchdog or a divergent barrier ended the launch

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "grid": list(self.grid), "block": list(self.block),
                "findings": [f.to_json() for f in self.findings], "memory": [m.to_json() for m in self.memory]}

    def counts(self) -> dict:
        counts = {s: 0 for s in SEVERITIES}
        for finding in self.findings:
            counts[finding.severity] += 1
        return counts


class Report:
    """Every launch watched by one ``sanitize()`` block, in launch order."""

    def __init__(self, tools=(), schedule="in-order", seed=0, print_level="warning"):
        self.tools = tuple(tools)
        self.schedule = schedule
        self.seed = seed
        self.print_level = print_level
        self.launches: list[Launch] = []

    # ---- for programs -------------------------------------------------------------------------------
    def findings(self, print_level: str = "info"):
        """Every finding at least as severe as ``print_level``, launch by launch."""
        rank = SEVERITY_RANK[print_level]
        return [f for launch in self.launches for f in launch.findings if SEVERITY_RANK[f.severity] <= rank]

    def errors(self):
        """The findings of severity error or warning (what makes ``cli.py sanitize`` exit 1)."""
        return self.findings("warning")

    @property
    def clean(self) -> bool:
        return not self.errors()

    def first_finding_line(self) -> str | None:
        """The first error or warning in one line (a grader leads its failure message with it), else None."""
        errors = self.errors()
        return errors[0].one_line() if errors else None

    def summary(self) -> str:
        """One line: how many launches, errors, warnings."""
        counts = {s: sum(1 for f in self.findings() if f.severity == s) for s in SEVERITIES}
        flagged = sum(1 for launch in self.launches if any(f.severity != "info" for f in launch.findings))
        return (f"{counts['error']} error{'s' * (counts['error'] != 1)}, {counts['warning']} "
                f"warning{'s' * (counts['warning'] != 1)} in {flagged} of {len(self.launches)} "
                f"launch{'es' * (len(self.launches) != 1)} ({counts['info']} info)")

    def to_json(self) -> dict:
        """The dict ``cli.py sanitize --json F`` writes (issue 26's schema, exactly)."""
        return {"launches": [launch.to_json() for launch in self.launches]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1)

    @classmethod
    def from_json(cls, data: dict, **kwargs) -> Report:
        report = cls(**kwargs)
        for entry in data["launches"]:
            launch = Launch(entry["kernel"], tuple(entry["grid"]), tuple(entry["block"]))
            launch.findings = [Finding(**f) for f in entry["findings"]]
            launch.memory = [MemoryRow(m["file"], m["line"], m["space"], m["op"], m["requests"],
                                       m["sectors"], m["wavefronts"], m["ways"]) for m in entry["memory"]]
            report.launches.append(launch)
        return report

    # ---- for people ---------------------------------------------------------------------------------
    def text(self, print_level: str | None = None, memory: bool = True) -> str:
        """compute-sanitizer-style text: per launch with findings, each finding (severity, kind, hazard,
        both lines, an example pair, how many pairs share it) and a summary; then the memory profile per
        kernel and source line; then one ERROR SUMMARY line."""
        level = print_level or self.print_level
        rank = SEVERITY_RANK[level]
        out = []
        first_seen: dict = {}  # (kernel, what was found) -> the first launch that found it
        for number, launch in enumerate(self.launches):
            shown = [f for f in launch.findings if SEVERITY_RANK[f.severity] <= rank]
            if not shown and not launch.dropped:
                continue
            signature = (launch.kernel, tuple((f.kind, f.severity, f.space, f.hazard, f.scope, f.file,
                                               tuple(f.lines)) for f in shown), launch.dropped > 0)
            if signature in first_seen:  # a loop launching one buggy kernel: say it once
                out.append(f"========= launch {number}: {launch.kernel}, grid {tuple(launch.grid)}: the same "
                           f"{_count(len(shown), 'finding')} as launch {first_seen[signature]}")
                continue
            first_seen[signature] = number
            out.append(f"========= launch {number}: {launch.kernel}, grid {tuple(launch.grid)}, "
                       f"block {tuple(launch.block)}")
            for finding in shown:
                out.append(f"========= {finding.severity.capitalize()}: {finding.headline()}")
                noun = {"race": "thread pair", "barrier_divergence": "thread"}.get(finding.kind, "access")
                plural = "es" if noun == "access" else "s"
                out.append(f"=========     {finding.count} {noun}{plural * (finding.count != 1)}; "
                           f"e.g. {finding.example}")
                out.append(f"=========     fix? {finding.hint()}")
            if launch.dropped:
                out.append(f"=========     ... and {launch.dropped} more findings not kept (cap per launch)")
            if launch.ended_early:
                out.append("=========     the launch was ended here (its results are incomplete)")
            counts = launch.counts()
            hidden = sum(counts[s] for s in SEVERITIES if SEVERITY_RANK[s] > rank)
            out.append(f"========= SUMMARY {launch.kernel}: {len(shown)} finding{'s' * (len(shown) != 1)} "
                       f"displayed ({_count(counts['error'], 'error')}, {_count(counts['warning'], 'warning')}"
                       f"{f', {hidden} hidden below --print-level {level}' if hidden else ''})")
        if memory:
            out.extend(self.memory_text())
        out.append(f"========= ERROR SUMMARY: {self.summary()}")
        return "\n".join(out)

    def memory_rows(self) -> dict:
        """The memory profile summed over launches, per kernel: {kernel: [MemoryRow, ...]}."""
        merged: dict = {}
        for launch in self.launches:
            rows = merged.setdefault(launch.kernel, {})
            for row in launch.memory:
                key = (row.file, row.line, row.space, row.op)
                total = rows.setdefault(key, MemoryRow(*key))
                total.requests += row.requests
                total.sectors += row.sectors
                total.wavefronts += row.wavefronts
                total.ways = max(total.ways, row.ways)
        return {kernel: sorted(rows.values(), key=lambda r: (r.file, r.line, r.op)) for kernel, rows in merged.items()}

    def memory_text(self) -> list[str]:
        out = []
        for kernel, rows in self.memory_rows().items():
            if not rows:
                continue
            launches = sum(1 for launch in self.launches if launch.kernel == kernel)
            out.append(f"========= MEMORY {kernel} ({launches} launch{'es' * (launches != 1)}): "
                       "Nsight Compute's counts per source line")
            out.append(f"{'line':<40} {'space':<6} {'op':<5} {'requests':>9} {'sectors':>7} {'sect/req':>8} "
                       f"{'ways':>4} {'conflicts':>9}")
            for r in rows:
                shared = r.space == "shared"
                where = f"{_short(r.file)}:{r.line}"
                if len(where) > 40:
                    where = f"{os.path.basename(r.file)}:{r.line}"
                out.append(f"{where:<40.40} {r.space:<6} {r.op:<5} {r.requests:>9} "
                           f"{'-' if shared else r.sectors:>7} "
                           f"{'-' if shared else f'{r.sectors_per_request:.1f}':>8} "
                           f"{r.ways if shared else '-':>4} {r.bank_conflicts if shared else '-':>9}")
        return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _short(path: str) -> str:
    """A path as the user will recognise it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return relative if not relative.startswith("..") else path
