"""The bench's report, from saved bench JSON (real rows: a 2-core CPU run with PyTorch peers, and a CPU + H100
run), never from a fresh bench: the default table fits 100 columns, columns no row fills are left out,
--wide shows every column, a verdict per family, rows above 100 % of a ceiling explained, and a plot whose
titles match its axes with nothing clipped."""

import copy
import io
import json
import re
from pathlib import Path

import pytest

from bench import report
from bench.runner import _row, spread_of

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CPU_RUN = RESULTS / "2026-11-27-cpu-epyc-2core.json"  # cpu rows, torch-cpu peers, no GPU
GPU_RUN = RESULTS / "2026-11-27-gpu" / "run2-h100-bench.json"  # cpu, cuda, torch-cpu and torch-cuda rows


def load(path) -> dict:
    return json.loads(Path(path).read_text())


def cpu_only(result: dict) -> dict:
    """The run as `bench --device cpu` without peers would have it: the peer columns empty."""
    result = copy.deepcopy(result)
    result["results"] = [r for r in result["results"] if r["device"] == "cpu"]
    for r in result["results"]:
        r["vs_peer"] = None
    return result


def with_spread(result: dict, noisy_rows: int) -> dict:
    """Every row gets a spread: a quiet 5 %, except the first ``noisy_rows`` measured rows of each family."""
    result = copy.deepcopy(result)
    count = {}
    for r in result["results"]:
        if r["median_ms"] is not None:
            count[r["op"]] = count.get(r["op"], 0) + 1
            r["spread"] = 0.9 if count[r["op"]] <= noisy_rows else 0.05
    return result


def render(result: dict, wide: bool = False, width: int | None = None) -> str:
    from rich.console import Console

    out = io.StringIO()
    console = None if width is None else Console(file=out, width=width, color_system=None)
    if console is None:  # the real path: print_table picks the console itself
        import contextlib

        with contextlib.redirect_stdout(out):
            report.print_table(result, wide=wide)
    else:
        report.print_table(result, console=console, wide=wide)
    return out.getvalue()


@pytest.fixture(autouse=True)
def piped(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # piped, no COLUMNS: the report's own default width


# ------------------------------------------------------------------------------------------- the width
@pytest.mark.parametrize("path", [CPU_RUN, GPU_RUN], ids=["cpu+peers", "cpu+gpu+peers"])
def test_default_table_fits_100_columns(path):
    text = render(with_spread(load(path), noisy_rows=2))
    lines = text.splitlines()
    assert len(lines) > 100, "every row is there"
    too_wide = [line for line in lines if len(line) > 100]
    assert not too_wide, too_wide[:3]
    # one line per row: the rows of ours and the peers, each with its time
    result = load(path)
    assert sum(line.startswith("  cpu ") for line in lines) == sum(r["device"] == "cpu" for r in result["results"])


def test_default_table_fits_with_long_case_names_and_every_ratio_column():
    result = load(GPU_RUN)
    row = next(r for r in result["results"] if r["op"] == "gemm" and r["device"] == "cuda")
    long = dict(row, case="a case name far longer than any the bench uses, to see that it wraps " * 2,
                vs_blas=1.23, samples_per_s=123456.0, gflops=123456.0, gbps=12345.6, median_ms=12345.678)
    result["results"].append(long)
    assert max(len(line) for line in render(result).splitlines()) <= 100


def test_wide_prints_every_column_at_any_width():
    result = with_spread(load(GPU_RUN), noisy_rows=1)
    text = render(result, wide=True)
    header = next(line for line in text.splitlines() if "max rel err" in line)
    for column in ("op", "case", "device", "impl", "thr", "ms", "spread %", "first ms", "GFLOP/s", "GB/s", "% ceil",
                   "vs CPU", "vs peer", "vs BLAS", "samples/s", "max rel err"):
        assert f" {column} " in header, column
    assert len(header) > 100  # not squeezed into the default width: one row per line
    rows = [line for line in text.splitlines() if line.startswith("│ gemm")]
    assert len(rows) == sum(r["op"] == "gemm" for r in result["results"])


def test_columns_empty_for_the_whole_run_are_left_out():
    result = cpu_only(load(CPU_RUN))  # a CPU-only run: no "vs CPU" (GPU rows) and no "vs peer" (no peers)
    for wide in (False, True):
        text = render(result, wide=wide)
        assert "vs CPU" not in text and "vs peer" not in text, wide
        assert "vs BLAS" in text  # the CPU GEMM rows fill it
    full = render(load(GPU_RUN))
    assert "vs CPU" in full and "vs peer" in full


def test_default_table_groups_rows_under_their_case_and_marks_noisy_times():
    result = with_spread(cpu_only(load(CPU_RUN)), noisy_rows=1)
    lines = render(result).splitlines()
    header = next(line for line in lines if line.startswith("gemm "))
    assert re.split(r"\s{2,}", header.strip())[1:] == ["thr", "ms", "GFLOP/s", "GB/s", "% ceil", "vs BLAS"]
    first = lines.index(header)
    assert lines[first + 1] == " 256^3" and lines[first + 2].startswith("  cpu  blas_split")
    assert re.search(r" ~\d+\.\d{3} ", lines[first + 2]), "the noisy row's time is marked ~"
    assert "~" not in lines[first + 3]


# ------------------------------------------------------------------------------------------- the verdict
def test_verdict_per_family_on_a_cpu_only_run():
    result = cpu_only(load(CPU_RUN))
    verdicts = {f: report.family_verdict(result, f) for f in ("gemm", "conv", "pool", "optim", "train", "rnn")}
    gemm = verdicts["gemm"]
    best = max((r for r in result["results"] if r["op"] == "gemm" and r["impl"] != "numpy matmul"),
               key=lambda r: r["pct_of_ceiling"])
    assert gemm.startswith(f"best CPU row {best['pct_of_ceiling']:.0f} % of its ceiling ({best['impl']}, ")
    for family, verdict in verdicts.items():
        assert "no GPU in this run" in verdict, family
        assert "WARNING" not in verdict, "no spread recorded in this old run: no warning"
    assert "samples/s" in verdicts["train"], "training steps have no ceiling: their throughput instead"
    text = render(result)
    assert "\nverdict\n" in text
    for family in verdicts:
        assert f"\n{family}: best CPU row" in text


def test_verdict_gives_the_gpu_speedup_over_the_best_cpu_row():
    result = load(GPU_RUN)
    verdict = report.family_verdict(result, "gemm")
    assert "best GPU row 28 % of its ceiling (register_blocked, 2048^3)" in verdict
    # per case, the best GPU version against the best CPU row (numpy matmul included, as speedup_vs_cpu is)
    assert "GPU over the best CPU row: 0.3x (lenet fc1 b64 (64x400 @ 400x120)) to 9.3x (2048^3)" in verdict
    assert "no GPU" not in verdict
    gpu_only = copy.deepcopy(result)
    gpu_only["results"] = [r for r in gpu_only["results"] if r["device"] == "cuda"]
    for r in gpu_only["results"]:
        r["speedup_vs_cpu"] = None
    assert "no CPU rows to compare the GPU with" in report.family_verdict(gpu_only, "gemm")


def test_verdict_warns_when_the_repeats_spread_widely():
    quiet, loud = with_spread(load(CPU_RUN), noisy_rows=0), with_spread(load(CPU_RUN), noisy_rows=3)
    assert "WARNING" not in report.family_verdict(quiet, "gemm")
    n = sum(r["op"] == "gemm" and r["median_ms"] is not None for r in loud["results"])
    assert f"WARNING: 3 of {n} rows' repeats spread over 25 %" in report.family_verdict(loud, "gemm")
    assert "interquartile range / median" in render(loud)  # the note says what the threshold measures
    assert "interquartile range" not in render(quiet)


def test_spread_is_the_interquartile_range_over_the_median():
    assert spread_of([1.0, 1.0, 1.0, 1.0]) == 0.0
    assert spread_of([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx((4.0 - 2.0) / 3.0)
    assert spread_of([1.0, 1.0, 1.0, 1.0, 100.0]) == 0.0, "one outlier moves it not at all"
    assert spread_of([1.0, 2.0]) is None, "too few repeats to say"


def test_cpu_and_gpu_rows_record_the_spread_of_their_timed_repeats(monkeypatch):
    from bench import runner, timing

    recorded = runner._Recorded(lambda: None)
    timing.time_calls(recorded, "cpu", 5)
    assert len(recorded.samples_ms) >= 6, "the first call, then every timed repeat"
    # GPU rows: the CUDA-event samples of time_calls's own timing (no GPU needed to check the wiring)
    monkeypatch.setattr(timing, "_time_cuda", lambda run, repeats, budget_s: (7.0, [1.0, 2.0, 3.0, 4.0, 5.0]))
    assert runner._time_cuda_row(lambda: None, 5) == (7.0, 3.0, pytest.approx(2.0 / 3.0))


def test_rows_keep_every_json_key_and_add_the_spread():
    class Spec:
        op, case = "gemm", "256^3"

    row = _row(Spec, "cpu", "blas", 1)
    old = {"op", "case", "device", "impl", "threads", "median_ms", "first_call_ms", "gflops", "gbps", "pct_of_ceiling",
           "speedup_vs_cpu", "vs_peer", "vs_blas", "max_rel_err", "samples_per_s", "note"}
    assert set(row) == old | {"spread", "vs_one_thread"}  # added later: the spread, the same row on one thread


# ------------------------------------------------------------------------------------- above 100 %
def test_rows_above_100_percent_are_explained_by_why():
    result = load(GPU_RUN)
    reasons = {}
    for r in result["results"]:
        if r["median_ms"] is not None:
            reasons[r["op"], r["case"], r["device"], r["threads"]] = report.above_ceiling_reason(r, result["ceilings"])
    # 1M parameters move 20 MB per step: in cache, past a DRAM ceiling
    assert reasons["optim", "sgd-momentum 1M params", "cpu", 16] == "cache"
    # 100M parameters move 2 GB: no cache holds that, so the GPU's copy probe fell short of its memory's peak
    assert reasons["optim", "sgd-momentum 100M params", "cuda", None] == "bandwidth probe"
    # cuBLAS past the FMA-chain probe: a compute ceiling below the hardware's peak
    assert reasons["gemm", "4096^3", "torch-cuda", None] == "compute probe"
    assert reasons["gemm", "4096^3", "cuda", None] is None, "25 %: nothing to explain"
    text = render(result)
    cache_note = next(line for line in text.split("\n") if line.startswith("Above 100 %: 3 rows"))
    assert "sgd-momentum 1M params" in cache_note
    flat = " ".join(text.split())
    assert "stay in the caches (L1/L2, last level)" in flat and "Cache-resident data beats a DRAM ceiling" in flat
    assert "above 100 %: cache-resident, see the note" in report.family_verdict(result, "optim")


def test_no_above_100_note_when_every_row_is_under_its_ceiling():
    result = cpu_only(load(CPU_RUN))
    result["results"] = [r for r in result["results"] if r["op"] == "gemm"]
    assert all(r["pct_of_ceiling"] <= 100 for r in result["results"])
    assert "Above 100 %" not in render(result)


def test_chapter_1_explains_rows_above_100_percent():
    chapter = " ".join((ROOT / "docs" / "tutorials" / "01-gpu-vs-cpu.md").read_text().split())
    # the printed line names the reason (the block runs in tests/test_docs.py), and the prose explains it
    assert 'above_ceiling_reason(row, result["ceilings"])' in chapter and '(above 100 %: {why})' in chapter
    assert "its speed is the memory bandwidth" not in chapter
    assert "little enough to stay in the caches" in chapter and "a ceiling for data that comes from DRAM" in chapter


# ------------------------------------------------------------------------------------------- the plot
@pytest.mark.parametrize("path", [CPU_RUN, GPU_RUN], ids=["cpu+peers", "cpu+gpu+peers"])
def test_plot_titles_match_their_axes_and_nothing_is_clipped(path, tmp_path):
    import matplotlib.pyplot as plt

    result = load(path)
    fig = report.build_figure(result)
    try:
        left, right = fig.axes
        assert left.get_title().startswith("% of the roofline ceiling per row")
        assert left.get_xlabel().startswith("% of the roofline ceiling")
        assert "GFLOP/s against arithmetic intensity" in right.get_title()
        assert (right.get_xlabel(), right.get_ylabel()) == ("arithmetic intensity (FLOP/byte)", "GFLOP/s")
        assert ("GPU bar ends with its speedup" in left.get_title()) == ("cuda" in result["config"]["devices"])
        assert ("no GPU in this run" in left.get_title()) == ("cuda" not in result["config"]["devices"])
        # the 100 % line, labelled, and the region past it explained under the axis
        assert any(list(line.get_xdata()) == [100, 100] for line in left.get_lines())
        assert any(t.get_text() == "100 % = the ceiling" for t in left.texts)
        assert max(r["pct_of_ceiling"] for r in report.plot_bars(result)) > 100
        assert "above 100 %: small operands stay in cache (L1/L2)" in left.get_xlabel()
        # every label, title and tick inside the figure: nothing clipped
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        texts = [fig._suptitle, left.title, right.title, left.xaxis.label, right.xaxis.label, right.yaxis.label,
                 *left.get_yticklabels(), *left.texts]
        assert len(left.get_yticklabels()) == len(report.plot_bars(result))
        for text in texts:
            extent = text.get_window_extent(renderer)
            assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, text.get_text()
            assert box.y0 - 1 <= extent.y0 and extent.y1 <= box.y1 + 1, text.get_text()
    finally:
        plt.close(fig)
    report.save_plot(result, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
