"""Score the simulator's sanitizer on its validation corpus (tests/sanitizer_corpus/).

Runs every case under ``sanitize(tools="all")`` and prints, per kind of finding, the true positives,
false positives and false negatives, precision and recall (a finding counts when its kind and its lines
match an expected one), then every case that disagrees with its expectation (a missed or extra finding,
a declared space, hazard, scope or severity that differs, a memory figure unequal to its hand count).
``--schedules N`` runs each case again under N random schedules and checks that the verdicts are equal.
Exits 1 on any disagreement.

    PYTHONPATH=$PWD python scripts/sanitizer_corpus.py --schedules 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # before anything imports numba
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sanitizer_corpus as corpus  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=0, metavar="N",
                        help="also run each case under N random schedules (seeds 1..N); verdicts must be equal")
    parser.add_argument("--only", default="", metavar="TEXT", help="only the cases whose name contains TEXT")
    args = parser.parse_args(argv)
    import sanitizer

    if not hasattr(sanitizer, "sanitize"):
        print("sanitizer.sanitize does not exist yet: merge the sanitizer branch first", file=sys.stderr)
        return 2
    cases = [case for case in corpus.cases() if args.only in case.name]
    if not cases:
        print(f"no case name contains {args.only!r}", file=sys.stderr)
        return 2
    totals = {kind: {"tp": 0, "fp": 0, "fn": 0} for kind in corpus.KINDS}
    disagreements = []
    figures = unequal = 0
    start = time.perf_counter()
    for case in cases:
        result = corpus.run(case)
        problems = []
        for kind, counts in corpus.score(result).items():
            for name in counts:
                totals[kind][name] += counts[name]
        expected = {(f["kind"], tuple(f["lines"])) for f in case.expect}
        found = {(f["kind"], tuple(sorted(set(f["lines"])))) for f in result.findings}
        problems += [f"missed {kind} at lines {list(lines)}" for kind, lines in sorted(expected - found)]
        problems += [f"extra {kind} at lines {list(lines)}" for kind, lines in sorted(found - expected)]
        memory = corpus.memory_mismatches(result)
        figures += sum(len(row) - 3 for row in case.memory)  # each figure besides line, space and op
        unequal += len(memory)
        problems += corpus.detail_mismatches(result) + memory
        if not case.seeded and result.raised:
            problems.append(f"raised under the sanitizer: {result.raised}")
        for seed in range(1, args.schedules + 1):
            other = corpus.run(case, "random", seed).verdict()
            if other != result.verdict():
                problems.append(f"random schedule seed {seed}: verdict {other} != in order {result.verdict()}")
        if problems:
            disagreements.append((case.name + (f" (known: {case.xfail})" if case.xfail else ""), problems))
    seconds = time.perf_counter() - start

    print(f"{len(cases)} cases ({sum(c.seeded for c in cases)} seeded bugs), "
          f"{'in order' + (f' and {args.schedules} random schedules' if args.schedules else '')}, {seconds:.0f} s")
    print(f"{'kind':20s} {'TP':>4s} {'FP':>4s} {'FN':>4s} {'precision':>10s} {'recall':>8s}")
    for kind in corpus.KINDS:
        t = totals[kind]
        precision = t["tp"] / (t["tp"] + t["fp"]) if t["tp"] + t["fp"] else float("nan")
        recall = t["tp"] / (t["tp"] + t["fn"]) if t["tp"] + t["fn"] else float("nan")
        print(f"{kind:20s} {t['tp']:4d} {t['fp']:4d} {t['fn']:4d} {precision:10.2f} {recall:8.2f}")
    print(f"memory profile: {figures} hand-counted figures, {unequal} disagreeing (a missing row counts once)")
    if disagreements:
        print(f"\n{len(disagreements)} case(s) disagree:")
        for name, problems in disagreements:
            print(f"  {name}")
            for problem in problems:
                print(f"    {problem}")
        return 1
    print("every case agrees with its expectation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
