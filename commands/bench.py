"""``python cli.py bench``: every op timed on the multi-core CPU and the GPU, checked, against ceilings."""

from __future__ import annotations

from .common import CliError, add_device_option, check_output_file, write_json

DESCRIPTION = (
    "Time GEMM, convolution, pooling, the RNN, optimizer updates and whole training steps on the "
    "multi-core CPU and (when present) the GPU. Each row: median time after warm-up, GFLOP/s, GB/s, "
    "percent of the roofline ceiling measured in the same run, GPU speedup over the best CPU row, "
    "and the error against a float64 reference re-checked after timing. Versions sit side by side "
    "(GEMM: naive, tiled, register-blocked 4x4 and 8x8, and split-K on the GPU; on the CPU BLAS split "
    "over Numba's threads in OpenBLAS small-kernel tiles (blas_split) or one band per thread "
    "(blas_bands), one BLAS call and the hand-written prange loop, with NumPy's matmul as the "
    "yardstick for the 'vs BLAS' column; convolution: im2col and the CPU's per-image image_gemm). "
    "Every CPU row samples for at least 0.3 s, and the CPU GEMM versions and NumPy's matmul are "
    "timed in alternating blocks, so 'vs BLAS' is a paired ratio: this is a noisy-machine tool, "
    "compare within a run. The table fits 100 columns (one per op family, columns no row fills left out; "
    "--wide: every column) and ends with a verdict per family.")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="time every op on the CPU (1 and all threads) and the GPU, against measured ceilings",
        description=DESCRIPTION)
    add_device_option(parser, extra_choices=("all",),
                      help="cpu, cuda, all (both), auto (default: both when there is a GPU); sim: CPU rows only, "
                           "the simulator is never timed")
    parser.add_argument("--ops", default=None,
                        help="comma-separated subset of gemm,conv,pool,elementwise,rnn,optim,train (default: all "
                             "of them), or allreduce: MPI_Allreduce latency and bandwidth over message sizes, 4 B to "
                             "16 MiB, on 2 ranks (or each --ranks count from 2), OSU-style (needs the dist extra)")
    parser.add_argument("--quick", action="store_true", help="fewer cases and repeats (about a minute on 2 cores)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the multi-core rows "
                        "(default: all); the 1-thread rows always run")
    parser.add_argument("--peers", action="store_true", help="also run the cases through PyTorch when installed")
    parser.add_argument("--busy", type=int, default=None, metavar="N",
                        help="run every row twice: quiet, then with N processes spinning on a core each (as a "
                             "browser or a build beside the run would), and report each row's slowdown (busy "
                             "time / quiet time); the spinners always stop with the bench. --peers meet the same load")
    parser.add_argument("--ranks", metavar="1,2,...", help="also time data-parallel training steps over these MPI "
                        "rank counts, with the blocking and the overlapped allreduce: step time, time in the "
                        "allreduce, the part of it hidden behind backward, efficiency (needs the dist extra)")
    parser.add_argument("--json", metavar="FILE", help="write machine, ceilings and every row as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="write a PNG: percent of ceiling per row and a roofline")
    parser.add_argument("--wide", action="store_true", help="print every column, one row per line, at whatever "
                        "width that takes (default: a table per op family that fits 100 columns, then a verdict)")
    parser.add_argument("--force", action="store_true", help="let --json and --plot replace a file of another kind")
    parser.set_defaults(run=run)


def run(args) -> int:
    from bench import ALL_OPS, BenchConfig, print_table, run_bench, save_plot
    from bench.runner import EXTRA_OPS
    from hardware import cuda_probe

    ops = _parse_list(args.ops, ALL_OPS + EXTRA_OPS, "op") if args.ops else list(ALL_OPS)
    _check_outputs(args)  # engine.outputs' rule, before minutes of timing
    counts = _parse_ranks(args.ranks) if args.ranks else []
    gpu = cuda_probe.real_gpu_count() > 0 and not cuda_probe.simulator_requested()
    device = args.device or "auto"
    if device == "cuda" and not gpu:
        from engine import Device

        Device("cuda")  # raises the one-line explanation
        raise CliError("the CUDA simulator is never timed: use `python cli.py --device sim check` for correctness")
    devices = ["cpu"] if device in ("cpu", "sim") or (device in ("auto", "all") and not gpu) else \
        (["cuda"] if device == "cuda" else ["cpu", "cuda"])
    reason = None
    if not gpu and device != "cpu":
        from bench.runner import NO_GPU_NOTE

        reason = NO_GPU_NOTE
    if args.threads is not None:
        from cuda_kernels.threads import check_threads

        try:
            check_threads(args.threads)
        except ValueError as exc:
            raise CliError(f"--{exc}") from None
    if args.busy is not None and args.busy < 1:
        raise CliError(f"--busy takes a number of spinning processes >= 1, got {args.busy}")
    config = BenchConfig(devices=devices, ops=ops, quick=args.quick, peers=args.peers,
                         threads=sorted({1, args.threads}) if args.threads else [], gpu_unavailable_reason=reason,
                         mpi_ranks=[c for c in counts if c >= 2] or [2])
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("[bold]bench[/bold] {task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("starting", total=1)

        def report(done, total, what):
            progress.update(task, completed=done, total=total, description=what[:60])

        if args.busy:
            from bench.busy import run_quiet_and_busy

            result = run_quiet_and_busy(config, args.busy, progress=report)
        else:
            result = run_bench(config, progress=report)
        if args.ranks and not result.get("interrupted"):
            from bench.scaling import run_scaling

            progress.update(task, description="MPI rank scaling")
            result["scaling"] = run_scaling(sorted(set(counts)))
    print_table(result, wide=args.wide)
    if result.get("scaling"):
        from bench.report import print_scaling_table

        print_scaling_table(result["scaling"])
        from bench.scaling import print_allreduce_table

        print_allreduce_table(result["scaling"])
    if reason:
        console.print(f"[yellow]GPU rows unavailable:[/yellow] {reason}")
    if args.json:
        write_json(args.json, result)
    if args.plot:
        save_plot(result, args.plot)
        console.print(f"plot written to {args.plot}")
    if result.get("interrupted"):
        console.print(f"[yellow]bench {result['interrupted']}[/yellow]: the rows above are the ones measured")
        return 130
    return 0


def _check_outputs(args) -> None:
    if args.json:
        check_output_file("--json", args.json, kind="json", force=getattr(args, "force", False))
    if args.plot:
        check_output_file("--plot", args.plot, kind="plot", force=getattr(args, "force", False),
                          suffixes=("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp"))


def _parse_list(text: str, allowed, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise CliError(f"unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(allowed)}")
    return items


def _parse_ranks(text: str) -> list[int]:
    try:
        counts = [int(r) for r in text.split(",") if r.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise CliError(f"--ranks takes positive counts like 1,2, got {text!r}")
    return counts
