"""Presenting bench results.

In the terminal: one compact table per op family that fits ``TABLE_WIDTH`` columns (each case on its own
line, its rows under it; a column that no row of the family fills is left out), the notes its columns
need, and a verdict per family — the best row's percent of its ceiling, the GPU's speedup over the best
CPU row (or "no GPU in this run"), and a warning when the repeats spread widely. ``wide=True`` prints
every column instead, one row per line, at whatever width that takes. With ``--ranks``: the MPI scaling.

A PNG with two panels: each row's percent of its roofline ceiling (the GPU rows labelled with their
speedup over the best CPU row), and the roofline itself with every row that counts FLOPs placed on it.
"""

from __future__ import annotations

import os
import textwrap

TABLE_WIDTH = 100  # the default table, its notes and the verdict fit this many columns
# A row is noisy when the middle half of its repeats (interquartile range) spans more than this fraction
# of their median: on a quiet machine it stays under 0.15; another process sharing the cores pushes it
# far past it. Such a row's time is marked "~" and its family's verdict warns.
SPREAD_WARN = 0.25
FAMILIES = ("gemm", "conv", "pool", "elementwise", "rnn", "optim", "train")
YARDSTICK_IMPL = "numpy matmul"  # bench.cases.NUMPY_BLAS (not imported: that module loads the kernels)
# Why a row can pass 100 % of its ceiling, by the side of the ridge it sits on and how much it moves per call.
CACHE_BYTES = 64 * 2**20  # moving less per call, a row's operands can stay in the caches between repeats
ABOVE_CEILING = {
    "cache": "each moves under 64 MiB per call, small enough to stay in the caches (L1/L2, last level) between "
             "repeats, and a cache is several times faster than the DRAM (main memory) that the bandwidth ceiling "
             "streams 128 MiB or more from. Cache-resident data beats a DRAM ceiling, not the hardware",
    "bandwidth probe": "each moves over 64 MiB per call, more than most caches hold: either this machine's "
                       "last-level cache is unusually large, or the copy probe fell short of the memory's peak",
    "compute probe": "compute-bound rows faster than the peak FLOP/s ceiling, which is only what this run's "
                     "probe reached (BLAS SGEMM on the CPU, an FMA chain on the GPU), not the hardware's peak",
}
ABOVE_SHORT = {"cache": "cache-resident", "bandwidth probe": "the copy probe's ceiling is low",
               "compute probe": "the FLOP/s probe's ceiling is low"}


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _rate(value) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"


def _measured(row) -> bool:
    return row["median_ms"] is not None


def _ours(row) -> bool:
    """A row of tilegrad's own code (not NumPy's matmul or a PyTorch peer, the yardsticks)."""
    return row["device"] in ("cpu", "cuda") and row["impl"] != YARDSTICK_IMPL


def _yardstick(row) -> bool:
    return row["device"].startswith("torch") or row["impl"] == YARDSTICK_IMPL


def noisy(row) -> bool:
    """Whether the row's repeats spread more than SPREAD_WARN (rows from before the spread was kept: never)."""
    return (row.get("spread") or 0.0) > SPREAD_WARN


def above_ceiling_reason(row: dict, ceilings: dict) -> str | None:
    """For a row above 100 % of its ceiling, why (a key of ABOVE_CEILING); None for any other row."""
    if (row["pct_of_ceiling"] or 0) <= 100:
        return None
    ceiling = ceilings.get("cuda" if row["device"] in ("cuda", "torch-cuda") else "cpu")
    if row["gflops"] and ceiling and (not row["gbps"] or row["gflops"] / row["gbps"] >= ceiling["gflops"] /
                                      ceiling["gbps"]):
        return "compute probe"
    moved = (row["gbps"] or 0) * 1e9 * row["median_ms"] / 1e3  # bytes per call
    return "cache" if moved <= CACHE_BYTES else "bandwidth probe"


def _families(result) -> list[str]:
    present = list(dict.fromkeys(r["op"] for r in result["results"]))
    return [f for f in FAMILIES if f in present] + [f for f in present if f not in FAMILIES]


def _console(width: int | None):
    """A console ``width`` columns wide, or at most TABLE_WIDTH: the terminal's width when narrower (or COLUMNS,
    when set), TABLE_WIDTH when piped into a file or a pager."""
    from rich.console import Console

    if width is not None:
        return Console(width=width)
    probe = Console()
    narrower = probe.is_terminal or os.environ.get("COLUMNS", "").isdigit()
    return Console(width=min(probe.width, TABLE_WIDTH) if narrower else TABLE_WIDTH)


def _wrap(text: str, width: int = TABLE_WIDTH, indent: str = "") -> str:
    """``text`` wrapped to ``width`` columns, the lines after the first indented; never "100" and "%" apart."""
    lines = textwrap.wrap(text.replace(" %", "\xa0%"), width, initial_indent=indent,
                          subsequent_indent=indent or "  ", break_on_hyphens=False)
    return "\n".join(lines).replace("\xa0%", " %")


# ------------------------------------------------------------------------------------------------ the table
# (key, header, formatter): the compact table's number columns, in order. A column no row of a family fills
# is left out; if the family's lines are still too wide, the columns of DROP_FIRST go, in that order.
COLUMNS = [
    ("threads", "thr", lambda r: _fmt(r["threads"], "d")),
    ("median_ms", "ms", lambda r: ("~" if noisy(r) else "") + _fmt(r["median_ms"], ".3f")),
    ("gflops", "GFLOP/s", lambda r: _rate(r["gflops"])),
    ("gbps", "GB/s", lambda r: _rate(r["gbps"])),
    ("pct_of_ceiling", "% ceil", lambda r: _fmt(r["pct_of_ceiling"], ".0f")),
    ("speedup_vs_cpu", "vs CPU", lambda r: _fmt(r["speedup_vs_cpu"], ".1f")),
    ("vs_peer", "vs peer", lambda r: _fmt(r["vs_peer"], ".2f")),
    ("vs_blas", "vs BLAS", lambda r: _fmt(r.get("vs_blas"), ".2f")),
    ("vs_one_thread", "vs 1T", lambda r: _fmt(r.get("vs_one_thread"), ".2f")),
    ("slowdown", "busy x", lambda r: _fmt(r.get("slowdown"), ".1f")),
    ("samples_per_s", "samples/s", lambda r: _fmt(r["samples_per_s"], ",.0f")),
]
DROP_FIRST = ("gbps", "samples_per_s", "threads")
GAP = 2


def _family_lines(family: str, rows: list[dict], width: int) -> list[tuple[str, str | None]]:
    """(text, style) lines of one family's compact table: a header, then each case and its rows."""
    measured = [r for r in rows if _measured(r)]
    keys = [key for key, _, _ in COLUMNS if any(r.get(key) is not None for r in measured)]
    device_w = max(len(r["device"]) for r in rows)
    label_w = max([len(f"  {r['device']:<{device_w}}  {r['impl']}") for r in rows] + [len(family)])

    def layout(keys):
        widths = {}
        for key, header, fmt in COLUMNS:
            if key in keys:
                widths[key] = max([len(header)] + [len(fmt(r)) for r in measured])
        return widths, label_w + sum(w + GAP for w in widths.values())

    widths, total = layout(keys)
    for key in DROP_FIRST:
        if total <= width:
            break
        if key in keys and len(keys) > 2:
            keys = [k for k in keys if k != key]
            widths, total = layout(keys)
    headers = {key: header for key, header, _ in COLUMNS}
    formats = {key: fmt for key, _, fmt in COLUMNS}
    lines = [(family.ljust(label_w) + "".join(" " * GAP + headers[k].rjust(widths[k]) for k in keys), "bold")]
    case = None
    for r in rows:
        if r["case"] != case:
            case = r["case"]
            lines.append((_wrap(case, width, indent=" "), None))
        label = f"  {r['device']:<{device_w}}  {r['impl']}".ljust(label_w)
        if not _measured(r):
            why = "no GPU in this run" if r["device"] == "cuda" else (r.get("note") or "")
            text = f"{label}  unavailable" + (f": {why}" if why else "")
            lines.append((text if len(text) <= width else text[:width - 1] + "…", "dim"))
            continue
        cells = "".join(" " * GAP + formats[k](r).rjust(widths[k]) for k in keys)
        lines.append((label + cells, "cyan" if _yardstick(r) else ("yellow" if noisy(r) else None)))
    return lines


def table_lines(result: dict, width: int = TABLE_WIDTH) -> list[tuple[str, str | None]]:
    """The compact table: (text, style) lines, each at most ``width`` columns when the cases' rows fit it."""
    lines = []
    for family in _families(result):
        rows = [r for r in result["results"] if r["op"] == family]
        rows = [r for r in rows if not _measured(r)] + [r for r in rows if _measured(r)]  # "unavailable" first
        lines += [("", None)] + _family_lines(family, rows, width)
    return lines


def _wide_table(result: dict):
    """Every column (those no row fills left out), one row per line: for grep, awk and a wide pager."""
    from rich.table import Table

    columns = [("op", "op", "left", lambda r: r["op"]), ("case", "case", "left", lambda r: r["case"]),
               ("device", "device", "left", lambda r: r["device"]), ("impl", "impl", "left", lambda r: r["impl"]),
               ("threads", "thr", "right", lambda r: _fmt(r["threads"], "d")),
               ("median_ms", "ms", "right", lambda r: ("~" if noisy(r) else "") + _fmt(r["median_ms"], ".3f")),
               ("spread", "spread %", "right", lambda r: _fmt(None if r.get("spread") is None else 100 * r["spread"],
                                                              ".0f")),
               ("first_call_ms", "first ms", "right", lambda r: _fmt(r.get("first_call_ms"), ".1f")),
               ("gflops", "GFLOP/s", "right", lambda r: _fmt(r["gflops"], ".1f")),
               ("gbps", "GB/s", "right", lambda r: _fmt(r["gbps"], ".1f")),
               ("pct_of_ceiling", "% ceil", "right", lambda r: _fmt(r["pct_of_ceiling"], ".0f")),
               ("speedup_vs_cpu", "vs CPU", "right", lambda r: _fmt(r["speedup_vs_cpu"], ".1f")),
               ("vs_peer", "vs peer", "right", lambda r: _fmt(r["vs_peer"], ".2f")),
               ("vs_blas", "vs BLAS", "right", lambda r: _fmt(r.get("vs_blas"), ".2f")),
               ("vs_one_thread", "vs 1T", "right", lambda r: _fmt(r.get("vs_one_thread"), ".2f")),
               ("quiet_ms", "quiet ms", "right", lambda r: _fmt(r.get("quiet_ms"), ".3f")),
               ("slowdown", "busy x", "right", lambda r: _fmt(r.get("slowdown"), ".1f")),
               ("samples_per_s", "samples/s", "right", lambda r: _fmt(r["samples_per_s"], ",.0f")),
               ("max_rel_err", "max rel err", "right", lambda r: _fmt(r["max_rel_err"], ".1e"))]
    rows = result["results"]
    columns = [c for c in columns if any(r.get(c[0]) is not None for r in rows if _measured(r))]
    table = Table(title=_title(result), title_justify="left")
    for _, header, justify, _ in columns:
        table.add_column(header, justify=justify, no_wrap=True)
    for r in rows:
        if not _measured(r):
            cells = [fmt(r) if key in ("op", "case", "device", "impl") else "" for key, _, _, fmt in columns]
            table.add_row(*cells[:-1], "unavailable", style="dim")
            continue
        table.add_row(*(fmt(r) for _, _, _, fmt in columns),
                      style="cyan" if _yardstick(r) else ("yellow" if noisy(r) else None))
    return table


def _title(result: dict) -> str:
    machine = result["machine"]
    wait = f" ({machine['wait_policy'].split(' (')[0]} wait)" if machine.get("wait_policy") else ""
    busy = f", {result['busy']} busy process{'es' if result['busy'] > 1 else ''}" if result.get("busy") else ""
    return (f"tilegrad bench — {machine['cpu']}, {machine['threads']} threads{wait}"
            + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU") + busy)


# ------------------------------------------------------------------------------------- notes and verdict
def notes(result: dict, wide: bool = False) -> list[str]:
    """What the columns mean: only the ones shown, the above-100 % explanation only when a row is above."""
    rows = [r for r in result["results"] if _measured(r)]
    shown = {key for key in ("speedup_vs_cpu", "vs_peer", "vs_blas", "vs_one_thread", "slowdown")
             if any(r.get(key) is not None for r in rows)}
    out = [f"ceiling {kind}: {c['gflops']:,.0f} GFLOP/s ({c['gflops_how']}), {c['gbps']:,.1f} GB/s ({c['gbps_how']})"
           for kind, c in result["ceilings"].items()]
    out.append("% ceil: achieved / min(peak FLOP/s, intensity x bandwidth), both measured in this run; 100 % is "
               "the most this machine can do at that op's arithmetic intensity.")
    for reason, why in ABOVE_CEILING.items():
        above = [r for r in rows if above_ceiling_reason(r, result["ceilings"]) == reason]
        if above:
            top = max(above, key=lambda r: r["pct_of_ceiling"])
            out.append(f"Above 100 %: {len(above)} row{'s' * (len(above) > 1)} (up to {top['pct_of_ceiling']:.0f} %, "
                       f"{top['op']} {top['case']}): {why}.")
    if "speedup_vs_cpu" in shown:
        out.append("vs CPU (GPU rows): the best CPU row's time / the GPU's time for the same case.")
    if "vs_peer" in shown:
        out.append("vs peer: PyTorch's time / our time on the same device (> 1: we are faster).")
    if "vs_blas" in shown:
        out.append("vs BLAS (CPU GEMM rows): NumPy's matmul time on as many threads / our time, timed in "
                   "alternating blocks.")
    if "vs_one_thread" in shown:
        out.append("vs 1T (CPU rows on several threads): the same row's time on one thread / its time here, in "
                   "this run (< 1: the extra threads cost more than they give).")
    if "slowdown" in shown:
        out.append(f"busy x: the row's time with {result.get('busy')} spinning process(es) / its time in this "
                   "run's quiet pass (1.0: the load costs nothing).")
    if any(noisy(r) for r in rows):
        out.append("~ms (yellow): the row's repeats spread more than "
                   f"{100 * SPREAD_WARN:.0f} % (interquartile range / median), a sign of another process using "
                   "the cores.")
    if any(_yardstick(r) for r in rows):
        out.append("Cyan rows are yardsticks (NumPy's matmul, PyTorch), not ours.")
    if not wide:
        out.append("--wide: every column (op, spread, first call, max rel err, ...) with one row per line.")
    return out


def _where(r: dict, thread_word: bool = True) -> str:
    threads = f", {r['threads']} thread{'s' * (r['threads'] != 1)}" if r["threads"] and thread_word else ""
    return f"{r['impl']}{threads}, {r['case']}"


def family_verdict(result: dict, family: str) -> str:
    """One family's verdict: the best row of each device against its ceiling, the GPU's speedup over the best
    CPU row (or why there is none), the largest error, and a warning when the repeats spread widely."""
    rows = [r for r in result["results"] if r["op"] == family and _measured(r)]
    ours = [r for r in rows if _ours(r)]
    parts = []
    for kind, name in (("cpu", "CPU"), ("cuda", "GPU")):
        mine = [r for r in ours if r["device"] == kind]
        rated = [r for r in mine if r["pct_of_ceiling"] is not None]
        if rated:
            best = max(rated, key=lambda r: r["pct_of_ceiling"])
            pct = best["pct_of_ceiling"]
            reason = above_ceiling_reason(best, result["ceilings"])
            parts.append(f"best {name} row {pct:.0f} % of its ceiling ({_where(best)})"
                         + (f" — above 100 %: {ABOVE_SHORT[reason]}, see the note" if reason else ""))
        elif mine:
            best = min(mine, key=lambda r: r["median_ms"])
            rate = (f"{best['samples_per_s']:,.0f} samples/s" if best["samples_per_s"] else
                    f"{best['median_ms']:.3f} ms")
            parts.append(f"best {name} row {rate} ({_where(best)}; no roofline ceiling for it)")
    speedups = {}
    for r in ours:
        if r["device"] == "cuda" and r["speedup_vs_cpu"] is not None:
            speedups[r["case"]] = max(speedups.get(r["case"], 0.0), r["speedup_vs_cpu"])
    if speedups:
        (lo_case, lo), (hi_case, hi) = min(speedups.items(), key=lambda kv: kv[1]), max(speedups.items(),
                                                                                          key=lambda kv: kv[1])
        parts.append(f"GPU {hi:.1f}x the best CPU row ({hi_case})" if len(speedups) == 1 else
                     f"GPU over the best CPU row: {lo:.1f}x ({lo_case}) to {hi:.1f}x ({hi_case})")
    elif any(r["device"] == "cuda" for r in ours):
        parts.append("no CPU rows to compare the GPU with")
    else:
        parts.append("no GPU in this run")
    errors = [r["max_rel_err"] for r in ours if r["max_rel_err"] is not None]
    if errors:
        parts.append(f"max rel err {max(errors):.0e}")
    with_spread = [r for r in rows if r.get("spread") is not None]
    loud = [r for r in with_spread if noisy(r)]
    if loud:
        parts.append(f"WARNING: {len(loud)} of {len(with_spread)} rows' repeats spread over {100 * SPREAD_WARN:.0f} % "
                     "(marked ~; another process on the cores?): compare rows within this run, or rerun")
    if not ours:
        parts = ["no rows of ours measured"]
    return "; ".join(parts) + "."


def verdict_lines(result: dict, width: int = TABLE_WIDTH) -> list[str]:
    return [_wrap(f"{family}: {family_verdict(result, family)}", width, indent="")
            for family in _families(result)]


def print_table(result: dict, console=None, wide: bool = False) -> None:
    """The compact table (or, ``wide``, every column), the notes its columns need, and the verdict."""
    from rich.text import Text

    if wide:
        table = _wide_table(result)
        if console is None:
            needed = _console(10_000).measure(table).maximum  # the table's natural width, nothing squeezed
            console = _console(max(needed, TABLE_WIDTH))
        console.print(table)
    else:
        console = console or _console(None)
        console.print(Text(_title(result), style="bold"), soft_wrap=True)
        for text, style in table_lines(result, TABLE_WIDTH):
            console.print(Text(text, style=style or ""), soft_wrap=True)
    width = min(console.width, TABLE_WIDTH)
    console.print()
    for note in notes(result, wide):
        console.print(_wrap(note, width), soft_wrap=True, highlight=False, markup=False)
    console.print()
    console.print(Text("verdict", style="bold"))
    for line in verdict_lines(result, width):
        console.print(line, soft_wrap=True, highlight=False, markup=False,
                      style="yellow" if "WARNING" in line else None)


def print_scaling_table(rows: list[dict], console=None) -> None:
    """The rows of ``bench.scaling.run_scaling``: time and throughput per rank count, against 1 rank."""
    from rich.table import Table

    table = Table(title="data-parallel scaling (MPI ranks share this machine's cores; 1 rank uses all)",
                  title_justify="left")
    for column in ("case", "ranks", "ms/step", "samples/s", "vs 1 rank"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["case"], r["impl"], f"{r['median_ms']:.2f}", f"{r['samples_per_s']:,.0f}",
                      "–" if r["scaling"] is None else f"{r['scaling']:.2f}x")
    (_console(None) if console is None else console).print(table)


# ------------------------------------------------------------------------------------------------ the plot
COLORS = {"gemm": "tab:blue", "conv": "tab:orange", "pool": "tab:green", "elementwise": "tab:brown",
          "rnn": "tab:red", "optim": "tab:purple", "train": "tab:gray"}


def plot_bars(result: dict) -> list[dict]:
    """The left panel's bars: one per (case, device, impl) with a ceiling, its best thread count."""
    best, seen = {}, {}
    for i, r in enumerate(result["results"]):
        seen.setdefault(r["case"], i)
        if _measured(r) and r["device"] in ("cpu", "cuda") and r["pct_of_ceiling"] is not None:
            key = (r["op"], r["case"], r["device"], r["impl"])
            seen.setdefault(key, i)
            if key not in best or r["median_ms"] < best[key]["median_ms"]:
                best[key] = r
    family = {f: i for i, f in enumerate(_families(result))}
    # by family, then the cases and versions in the order the bench ran them
    return sorted(best.values(), key=lambda r: (family[r["op"]], seen[r["case"]], r["device"],
                                                seen[r["op"], r["case"], r["device"], r["impl"]]))


def plot_texts(result: dict) -> dict:
    """The plot's titles and axis labels (each title says what its axes show)."""
    machine = result["machine"]
    gpu = any(r["device"] == "cuda" and _measured(r) for r in result["results"])
    return {
        "suptitle": f"tilegrad bench on {machine['cpu']} ({machine['threads']} threads)"
                    + (f" + {machine['gpu']}" if machine.get("gpu") else ", no GPU"),
        "left_title": "% of the roofline ceiling per row (best thread count)\n"
                      "hatched: yardsticks, not ours; "
                      + ("a GPU bar ends with its speedup over the best CPU row" if gpu else "no GPU in this run"),
        "left_xlabel": "% of the roofline ceiling: achieved / min(peak FLOP/s, intensity x bandwidth)",
        "above": "shaded, above 100 %: small operands stay in cache (L1/L2), which beats a ceiling measured "
                 "from DRAM\n(or the run's probe fell short of the hardware's peak: see the note under the table)",
        "right_title": "roofline: GFLOP/s against arithmetic intensity\n(rows that count FLOPs; o cpu, ^ cuda)",
        "right_xlabel": "arithmetic intensity (FLOP/byte)",
        "right_ylabel": "GFLOP/s",
    }


def save_plot(result: dict, path) -> None:
    import matplotlib.pyplot as plt

    fig = build_figure(result)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # nothing clipped: the long row labels widen the image
    plt.close(fig)


def build_figure(result: dict):
    """The plot's figure (the caller closes it): bars of percent of ceiling, and the roofline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    texts = plot_texts(result)
    bars = plot_bars(result)
    height = max(6, 0.28 * len(bars) + 2.5)
    fig, (left, right) = plt.subplots(1, 2, figsize=(17, height), gridspec_kw={"width_ratios": [1.3, 1]},
                                      layout="constrained")  # room for the suptitle, titles and labels
    labels = [f"{r['op']}: {r['case']} [{r['device']} {r['impl']}]" for r in bars]
    values = [r["pct_of_ceiling"] for r in bars]
    y = list(range(len(bars)))
    left.barh(y, values, color=[COLORS.get(r["op"], "gray") for r in bars],
              hatch=["//" if _yardstick(r) else "" for r in bars], edgecolor="white")
    left.set_yticks(y, labels, fontsize=7)
    left.invert_yaxis()
    top = max(values + [100.0])
    left.set_xlim(0, top * 1.18)
    for i, r in enumerate(bars):
        text = f"{r['pct_of_ceiling']:.0f} %"
        if r["speedup_vs_cpu"] is not None:
            text += f"  GPU {r['speedup_vs_cpu']:.1f}x CPU"
        left.text(r["pct_of_ceiling"] + top * 0.01, i, text, va="center", fontsize=6)
    left.axvline(100, color="black", lw=0.9, ls="--")
    left.text(100, -0.9, "100 % = the ceiling", fontsize=7, ha="center", va="bottom",
              bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    left.set_ylim(len(bars) - 0.4, -1.6)  # room above the first bar for the 100 % label
    xlabel = texts["left_xlabel"]
    if top > 100:  # the explanation goes under the axis, where no bar can cover it
        left.axvspan(100, top * 1.18, color="0.92", zorder=0)
        xlabel += "\n" + texts["above"]
    left.set_xlabel(xlabel, fontsize=9)
    left.set_title(texts["left_title"], fontsize=9)

    for kind, c in result["ceilings"].items():
        ridge = c["gflops"] / c["gbps"]
        xs = [0.01, ridge, 1000]
        right.plot(xs, [min(c["gflops"], x * c["gbps"]) for x in xs], lw=2,
                   label=f"{kind} roofline: {c['gflops']:,.0f} GFLOP/s, {c['gbps']:,.0f} GB/s")
    families = []
    for r in bars:
        if r["gflops"] and r["gbps"]:
            marker = "o" if r["device"] == "cpu" else "^"
            right.scatter(r["gflops"] / r["gbps"], r["gflops"], color=COLORS.get(r["op"], "gray"), marker=marker,
                          s=28)
            families += [r["op"]] if r["op"] not in families else []
    for op in families:
        right.scatter([], [], color=COLORS.get(op, "gray"), label=op)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel(texts["right_xlabel"])
    right.set_ylabel(texts["right_ylabel"])
    right.set_title(texts["right_title"], fontsize=9)
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(texts["suptitle"], fontsize=11)
    return fig
