"""Presenting bench results: rich tables in the terminal (every row; with ``--ranks``, the MPI scaling),
and a PNG with two panels — each row's percent of its roofline ceiling (and, with a GPU, its speedup
over the best CPU row), and the roofline itself with every measured row placed on it."""

from __future__ import annotations


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _wide_console():
    """The terminal's console; piped into a file or a pager, one that does not squeeze tables into 80 columns."""
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=180)


def print_table(result: dict, console=None) -> None:
    from rich.table import Table

    if console is None:
        console = _wide_console()
    machine = result["machine"]
    title = (f"tilegrad bench — {machine['cpu']}, {machine['threads']} threads"
             + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU"))
    table = Table(title=title, title_justify="left")
    for name, justify in [("op", "left"), ("case", "left"), ("device", "left"), ("impl", "left"), ("thr", "right"),
                          ("ms", "right"), ("GFLOP/s", "right"), ("GB/s", "right"), ("% ceil", "right"),
                          ("vs CPU", "right"), ("vs peer", "right"), ("vs BLAS", "right"), ("samples/s", "right"),
                          ("max rel err", "right")]:
        table.add_column(name, justify=justify, overflow="fold")
    for r in result["results"]:
        if r["median_ms"] is None:
            table.add_row(r["op"], r["case"], r["device"], r["impl"], "", "", "", "", "", "", "", "", "",
                          "unavailable", style="dim")
            continue
        peer = r["device"].startswith("torch")
        table.add_row(r["op"], r["case"], r["device"], r["impl"], _fmt(r["threads"], "d"), _fmt(r["median_ms"], ".3f"),
                      _fmt(r["gflops"], ".1f"), _fmt(r["gbps"], ".1f"), _fmt(r["pct_of_ceiling"], ".0f"),
                      _fmt(r["speedup_vs_cpu"], ".1f"), _fmt(r["vs_peer"], ".2f"), _fmt(r.get("vs_blas"), ".2f"),
                      _fmt(r["samples_per_s"], ",.0f"), _fmt(r["max_rel_err"], ".1e"),
                      style="cyan" if peer or r["impl"] == "numpy matmul" else None)
    console.print(table)
    for kind, c in result["ceilings"].items():
        console.print(f"ceiling {kind}: {c['gflops']:.0f} GFLOP/s ({c['gflops_how']}), {c['gbps']:.1f} GB/s "
                      f"({c['gbps_how']})")
    console.print("% ceil: achieved / min(peak FLOP/s, intensity x bandwidth); cases that fit in cache can pass 100 % "
                  "of the DRAM bandwidth ceiling. vs peer: peer time / our time (> 1: we are faster). vs BLAS (CPU "
                  "GEMM rows): NumPy's matmul time on as many threads / our time. Cyan rows are yardsticks, not ours.")


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
    (_wide_console() if console is None else console).print(table)


def save_plot(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["results"] if r["median_ms"] is not None and r["device"] in ("cpu", "cuda")]
    best = {}
    for r in rows:  # one bar per (case, device, impl): its best thread count
        key = (r["op"], r["case"], r["device"], r["impl"])
        if r["pct_of_ceiling"] is not None and (key not in best or r["median_ms"] < best[key]["median_ms"]):
            best[key] = r
    bars = sorted(best.values(), key=lambda r: (r["op"], r["case"], r["device"], r["impl"]))
    height = max(6, 0.28 * len(bars) + 2)
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, height), gridspec_kw={"width_ratios": [1.2, 1]})
    colors = {"gemm": "tab:blue", "conv": "tab:orange", "pool": "tab:green", "elementwise": "tab:brown",
              "rnn": "tab:red", "optim": "tab:purple"}
    labels = [f"{r['op']}: {r['case']} [{r['device']} {r['impl']}]" for r in bars]
    values = [r["pct_of_ceiling"] for r in bars]
    y = range(len(bars))
    left.barh(list(y), values, color=[colors.get(r["op"], "gray") for r in bars])
    left.set_yticks(list(y), labels, fontsize=7)
    left.invert_yaxis()
    left.axvline(100, color="black", lw=0.8, ls="--")
    left.set_xlabel("% of roofline ceiling (best thread count)")
    top = {}  # each op family's largest GPU speedup over the best CPU row
    for r in rows:
        if r["speedup_vs_cpu"] and r["speedup_vs_cpu"] > top.get(r["op"], {"speedup_vs_cpu": 0})["speedup_vs_cpu"]:
            top[r["op"]] = r
    parts = [f"{r['op']} {r['case']}: {r['speedup_vs_cpu']:.1f}x" for r in top.values()]
    lines = ["; ".join(parts[i:i + 2]) for i in range(0, len(parts), 2)] or ["no GPU in this run"]
    left.set_title("largest GPU speedup over the best CPU row, per op\n" + "\n".join(lines), fontsize=8)

    for kind, c in result["ceilings"].items():
        ridge = c["gflops"] / c["gbps"]
        xs = [0.01, ridge, 1000]
        right.plot(xs, [min(c["gflops"], x * c["gbps"]) for x in xs], lw=2,
                   label=f"{kind} roofline: {c['gflops']:.0f} GFLOP/s, {c['gbps']:.0f} GB/s")
    for r in bars:
        if r["gflops"] and r["gbps"]:
            marker = "o" if r["device"] == "cpu" else "^"
            right.scatter(r["gflops"] / r["gbps"], r["gflops"], color=colors.get(r["op"], "gray"), marker=marker, s=28)
    for op, color in colors.items():
        right.scatter([], [], color=color, label=op)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("arithmetic intensity (FLOP/byte)")
    right.set_ylabel("GFLOP/s")
    right.set_title("roofline (o cpu, ^ cuda)")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    machine = result["machine"]
    fig.suptitle(f"tilegrad bench on {machine['cpu']} ({machine['threads']} threads)"
                 + (f" + {machine['gpu']}" if machine.get("gpu") else ", no GPU"), fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / height))  # leave the suptitle its own half inch
    fig.savefig(path, dpi=110)
    plt.close(fig)
