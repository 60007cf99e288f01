#!/usr/bin/env python
"""tilegrad's command line: learn and measure how deep learning runs on a GPU and on a multi-core CPU.

    python cli.py bench --quick             GPU vs multi-core CPU: every op, timed, checked, vs ceilings
    python cli.py train --model lenet       train a model on the bundled digits (or MNIST) with progress
    python cli.py check [--only NAME]       every kernel against its reference, every layer by gradcheck
    python cli.py profile --model lenet     where one training step's time goes, layer by layer
    python cli.py inspect [KERNEL] [--ptx]  registers, shared and local memory of each CUDA kernel (sm_90)
    python cli.py info                      what this machine has: devices, simulator, versions, BLAS

--device cpu|cuda|sim|auto (before or after the subcommand) picks where to compute; `sim` runs the
CUDA kernels in Numba's simulator (correct, very slow, never timed as if it were a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

DEVICE_CHOICES = ("auto", "cpu", "cuda", "sim")


class CliError(Exception):
    """A problem to report in one line, with a non-zero exit status."""


def _prepare(device: str | None) -> None:
    """Runs before numba is imported: the simulator can only be chosen now."""
    from hardware import cuda_probe

    if device == "sim":
        cuda_probe.enable_simulator()
    cuda_probe.ensure_numba_cache_dir()


# ------------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------------


def cmd_info(args) -> int:
    from engine import Device
    from hardware.machine import machine_info

    if args.device not in (None, "auto"):
        Device(args.device)  # asking about a device that cannot be used is an error, said in one line
    info = machine_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    gpu = info["gpu"]
    if gpu.get("present"):
        gpu_line = (f"{gpu['name']} (sm_{gpu['compute_capability'].replace('.', '')}, {gpu['multiprocessors']} SMs, "
                    f"{gpu['memory_gib']} GiB, driver CUDA {gpu['driver_cuda_version']})")
    else:
        gpu_line = f"none ({gpu.get('reason')})"
    devices = ["cpu"] + (["cuda"] if gpu.get("present") else []) + (["cuda (simulator)"] if info["simulator"] else [])
    blas = ", ".join(f"{b['library']} {b['version']} ({b['threads']} threads, {b['architecture']})"
                     for b in info["blas"])
    tool = info["cuda_toolchain"]
    toolchain = (f"NVVM {tool['nvvm']}, CUDA runtime {tool['cuda_runtime']}, cuda-bindings {tool['cuda_bindings']}"
                 if tool.get("nvvm") else tool.get("note", "unavailable"))
    table = Table(title="tilegrad info", show_header=False)
    for key, value in [
        ("devices", ", ".join(devices)),
        ("GPU", gpu_line),
        ("simulator", "ON: Device('cuda') runs kernels in Numba's CUDA simulator" if info["simulator"]
         else "off (python cli.py --device sim, or NUMBA_ENABLE_CUDASIM=1)"),
        ("CPU", f"{info['cpu']} — {info['threads']} Numba threads ({info['numba_threading_layer']} layer), "
                f"{info['logical_cpus']} logical CPUs"),
        ("BLAS", blas),
        ("numba / numba-cuda", f"{info['numba']} / {info['numba_cuda']}"),
        ("CUDA toolchain (PTX with no GPU)", toolchain),
        ("Python / NumPy", f"{info['python']} / {info['numpy']}" + _numpy_compat_note()),
    ]:
        table.add_row(key, value)
    Console().print(table)
    return 0


# ------------------------------------------------------------------------------------------------
# inspect
# ------------------------------------------------------------------------------------------------


def cmd_inspect(args) -> int:
    import subprocess

    from hardware import cuda_probe

    if cuda_probe.simulator_requested():
        # compile_ptx does not work inside a simulator process: compile in a clean one
        env = {k: v for k, v in os.environ.items() if k != cuda_probe.SIMULATOR_VARIABLE}
        cmd = [sys.executable, "-m", "cuda_kernels.ptx", *args.kernels, "--cc", args.cc]
        return subprocess.call(cmd + (["--ptx"] if args.ptx else []) + (["--json"] if args.json else []), env=env)
    from cuda_kernels import ptx

    argv = [*args.kernels, "--cc", args.cc] + (["--ptx"] if args.ptx else []) + (["--json"] if args.json else [])
    return ptx.main(argv)



# ------------------------------------------------------------------------------------------------
# bench
# ------------------------------------------------------------------------------------------------


def _console():
    """A console for tables: the terminal's width, or 160 columns when the output is piped."""
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=160)


def _parse_list(text: str, allowed, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise CliError(f"unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(allowed)}")
    return items


def _numpy_compat_note() -> str:
    from cuda_kernels.numpy_compat import RESTORED

    return f" (restored for numba-cuda: np.{', np.'.join(RESTORED)})" if RESTORED else ""


def cmd_bench(args) -> int:
    from bench import ALL_OPS, BenchConfig, print_table, run_bench, save_plot
    from hardware import cuda_probe

    ops = _parse_list(args.ops, ALL_OPS, "op") if args.ops else list(ALL_OPS)
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
    if args.threads is not None and args.threads < 1:
        raise CliError(f"--threads must be at least 1, got {args.threads}")
    config = BenchConfig(devices=devices, ops=ops, quick=args.quick, peers=args.peers,
                         threads=sorted({1, args.threads}) if args.threads else [], gpu_unavailable_reason=reason)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("[bold]bench[/bold] {task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("starting", total=1)

        def report(done, total, what):
            progress.update(task, completed=done, total=total, description=what[:60])

        result = run_bench(config, progress=report)
        if args.ranks and not result.get("interrupted"):
            from bench.scaling import run_scaling

            progress.update(task, description="MPI rank scaling")
            counts = [int(r) for r in args.ranks.split(",") if r.strip()]
            if not counts or min(counts) < 1:
                raise CliError(f"--ranks takes positive counts like 1,2, got {args.ranks!r}")
            result["scaling"] = run_scaling(sorted(set(counts)))
    print_table(result)
    if result.get("scaling"):
        from rich.table import Table

        table = Table(title="data-parallel scaling (MPI ranks share this machine's cores; 1 rank uses all)",
                      title_justify="left")
        for column in ("case", "ranks", "ms/step", "samples/s", "vs 1 rank"):
            table.add_column(column)
        for r in result["scaling"]:
            table.add_row(r["case"], r["impl"], f"{r['median_ms']:.2f}", f"{r['samples_per_s']:,.0f}",
                          "–" if r["scaling"] is None else f"{r['scaling']:.2f}x")
        _console().print(table)
    if reason:
        console.print(f"[yellow]GPU rows unavailable:[/yellow] {reason}")
    if args.json:
        _write_json(args.json, result)
    if args.plot:
        save_plot(result, args.plot)
        console.print(f"plot written to {args.plot}")
    if result.get("interrupted"):
        console.print(f"[yellow]bench {result['interrupted']}[/yellow]: the rows above are the ones measured")
        return 130
    return 0


def _write_json(path, data) -> None:
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1, default=float))


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------


def cmd_train(args) -> int:
    import time

    import layers as L
    import optim as O
    from engine import Device, fit, load
    from engine.checkpoint import save
    from engine.distributed import get_world
    from engine.recipes import RECIPES, build_model, build_optimizer, load_data

    recipe = RECIPES[args.model]
    world = get_world()  # under mpiexec: data-parallel ranks; rank 0 alone prints, plots and writes
    if (args.device or "auto") != "cpu":
        world.bind_gpu()
    dev = Device(args.device or "auto")
    train_set, test_set = load_data(args.model, args.dataset, args.data_dir)
    if args.limit is not None:
        if args.limit < 1:
            raise CliError(f"--limit must be positive, got {args.limit}")
        train_set, test_set = train_set.head(args.limit), test_set.head(args.limit)
    epochs = recipe.epochs if args.epochs is None else args.epochs
    batch_size = recipe.batch_size if args.batch_size is None else args.batch_size
    if epochs < 1 or batch_size < 1:
        raise CliError("--epochs and --batch-size must be positive")
    model = build_model(args.model, dev, train_set.x)
    optimizer = build_optimizer(args.optimizer, model.parameters(), args.lr, args.model)
    start_epoch = 0
    if args.resume:
        _, meta = load(args.resume, model=model, optimizer=optimizer)
        start_epoch = int(meta["extra"].get("epoch", 0))
    steps = (start_epoch + epochs) * -(-len(train_set) // batch_size)
    optimizer.schedule = O.cosine_lr(optimizer.base_lr, steps)
    loss_layer = L.SoftmaxCrossEntropy()

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, quiet=not world.is_root)
    ranks = f" x {world.size} ranks (global batch {batch_size})" if world.distributed else ""
    console.print(f"training {args.model} on {args.dataset} ({len(train_set)} train / {len(test_set)} test) on "
                  f"{dev!r}{ranks}: {epochs} epochs, batch {batch_size}, {args.optimizer} lr {optimizer.base_lr:g}")
    started = time.perf_counter()
    history = []
    with Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = None

        def on_event(event, info):
            nonlocal task
            if event == "batch":
                if task is None or info["step"] == 0:
                    task = progress.add_task("", total=info["total"], epoch=info["epoch"] + 1)
                rate = info["seen"] / max(info["seconds"], 1e-9)
                progress.update(task, completed=info["seen"],
                                description=f"loss {info['loss']:.4f}  {rate:,.0f} samples/s")
            else:
                history.append(info)
                acc = f"  test acc {info['test_accuracy']:.4f}" if "test_accuracy" in info else ""
                progress.update(task, description=f"loss {info['loss']:.4f}  train acc {info['train_accuracy']:.4f}"
                                                   f"{acc}  {info['samples_per_s']:,.0f} samples/s")

        try:
            fit(model, loss_layer, optimizer, train_set, epochs=epochs, batch_size=batch_size, eval_data=test_set,
                callbacks=[on_event], seed=args.seed, checkpoint=args.checkpoint, start_epoch=start_epoch)
        except KeyboardInterrupt:
            if not world.is_root:
                return 130
            done = start_epoch + len(history)
            if args.checkpoint and done > start_epoch:
                path = args.checkpoint  # written at the end of the last finished epoch: an exact resume point
                console.print(f"\ninterrupted: {path} holds epoch {done}; resume with --resume {path}")
            else:
                path = args.checkpoint or f"interrupted-{args.model}.npz"
                save(path, model, optimizer, extra={"epoch": done, "seed": args.seed})
                console.print(f"\ninterrupted during epoch {done + 1}: the model as it stands is saved in {path}; "
                              f"--resume {path} restarts that epoch from these weights")
            return 130
    seconds = time.perf_counter() - started
    final = history[-1]
    if not world.is_root:
        return 0
    summary = {"model": args.model, "dataset": args.dataset, "device": repr(dev), "epochs": start_epoch + epochs,
               "world_size": world.size,
               "batch_size": batch_size, "optimizer": args.optimizer, "lr": optimizer.base_lr,
               "final_loss": final["loss"], "train_accuracy": final["train_accuracy"],
               "test_accuracy": final.get("test_accuracy"),
               "samples_per_s": sum(h["samples_per_s"] for h in history) / len(history), "seconds": seconds,
               "history": history}
    print(f"{args.model} on {args.dataset}: test accuracy {summary['test_accuracy']:.4f}, final loss "
          f"{summary['final_loss']:.4f}, {summary['samples_per_s']:,.0f} samples/s, {seconds:.1f} s on {dev!r}")
    if args.json:
        _write_json(args.json, summary)
    if args.plot:
        _plot_history(history, args.plot, f"{args.model} on {args.dataset} ({args.optimizer}, {dev!r})")
    return 0


def _plot_history(history, path, title) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["loss"] for h in history], "o-", label="train")
    if "test_loss" in history[0]:
        left.plot(epochs, [h["test_loss"] for h in history], "s-", label="test")
    left.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    left.legend()
    right.plot(epochs, [h["train_accuracy"] for h in history], "o-", label="train")
    if "test_accuracy" in history[0]:
        right.plot(epochs, [h["test_accuracy"] for h in history], "s-", label="test")
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------
# check
# ------------------------------------------------------------------------------------------------

CHECK_FILES = ["test_gemm.py", "test_elementwise.py", "test_reductions.py", "test_conv_pool.py",
               "test_rnn_optim.py", "test_batchnorm.py", "test_engine.py", "test_exercises.py"]


def cmd_check(args) -> int:
    import os
    import subprocess
    import tempfile
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from engine import Device
    from hardware import cuda_probe

    device = args.device or "auto"
    dev = Device(device)  # one-line error for cuda without a GPU or the simulator
    tests = Path(__file__).resolve().parent / "tests"
    if not tests.is_dir():
        raise CliError(f"`check` runs the property tests in {tests}, which this installation lacks; "
                       "use a checkout of tilegrad")
    # the cuda cases carry the `gpu` marker; the cpu run takes everything else
    selection = "gpu" if dev.name == "cuda" else "not gpu"
    env = dict(os.environ)
    if dev.simulator:
        env[cuda_probe.SIMULATOR_VARIABLE] = "1"
        selection = "gpu and not slow"
    report = Path(tempfile.mkdtemp()) / "check.xml"
    cmd = [sys.executable, "-m", "pytest", *[str(tests / f) for f in CHECK_FILES], "-q", "-p", "no:cacheprovider",
           "-m", selection, f"--junitxml={report}", "-o", "addopts=", "--tb=short"]
    if args.only:
        cmd += ["-k", args.only]
    print(f"checking kernel properties and layer gradients on {dev!r}"
          + (f" (only {args.only!r})" if args.only else "") + " ...", file=sys.stderr)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if not report.exists():
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise CliError(f"pytest did not run: {last}")
    cases = ET.parse(report).getroot().iter("testcase")
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"tilegrad check on {dev!r}", title_justify="left")
    for column in ("check", "result", "seconds"):
        table.add_column(column)
    failures, counted, skipped_notes = [], 0, []
    for case in cases:
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if skipped is not None:
            skipped_notes.append(f"{name}: {skipped.get('message', '')}")
            continue
        counted += 1
        result = "[red]FAIL[/red]" if failed is not None else "[green]pass[/green]"
        table.add_row(escape(name), result, f"{float(case.get('time', 0)):.2f}")
        if failed is not None:
            failures.append((name, (failed.text or failed.get("message", ""))))
    console = _console()
    if counted:
        console.print(table)
    for name, text in failures:
        console.print(f"[red]FAILED {escape(name)}[/red]")
        console.print(_shorten(text), markup=False, highlight=False)
    if counted == 0:
        for note in skipped_notes:
            console.print(f"skipped {note}", markup=False, highlight=False)
        if skipped_notes:
            raise CliError(f"nothing was graded for {args.only!r}: every matching check was skipped (see above)")
        raise CliError(f"no check matched {args.only!r}" if args.only else "no checks ran")
    console.print(f"{counted - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def _shorten(text: str, lines: int = 40) -> str:
    """The end of a failure report: Hypothesis prints the smallest failing input there."""
    body = text.strip().splitlines()
    return "\n".join(body[-lines:])


# ------------------------------------------------------------------------------------------------
# profile
# ------------------------------------------------------------------------------------------------


def cmd_profile(args) -> int:
    import layers as L
    from engine import Device
    from engine.profiler import profile_step, random_batch
    from engine.recipes import build_model, build_optimizer

    dev = Device(args.device or "auto")
    if args.features is not None and args.model != "mlp":
        raise ValueError(f"--features: only the mlp takes a feature count (got --model {args.model})")
    if args.features is not None and args.features < 1:
        raise ValueError(f"--features: expected a positive count, got {args.features}")
    x, y = random_batch(args.model, args.batch_size, mlp_features=args.features or 64)
    model = build_model(args.model, dev, x)
    optimizer = build_optimizer("adam", model.parameters(), None, args.model)
    rows = profile_step(model, L.SoftmaxCrossEntropy(), optimizer, x, y, steps=args.steps)
    if args.json:
        _write_json(args.json, {"model": args.model, "device": repr(dev), "batch_size": args.batch_size, "parts": rows})
    from rich.table import Table

    shape = f" ({x.shape[1]} inputs)" if args.model == "mlp" else ""
    table = Table(title=f"one training step of {args.model}{shape}, batch {args.batch_size}, on {dev!r} "
                        f"(median of {args.steps} steps, synchronized)", title_justify="left")
    table.add_column("part")
    table.add_column("ms", justify="right")
    table.add_column("% of step", justify="right")
    table.add_column("", justify="left")
    for r in rows:
        table.add_row(r["part"], f"{r['median_ms']:.3f}", f"{r['percent']:.1f}",
                      "" if r["part"].startswith("total") else "█" * int(round(r["percent"] / 2)))
    _console().print(table)
    return 0


# ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python cli.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                        help="where to compute (default: auto = cuda with a real GPU, else cpu); "
                             "sim = CUDA kernels in Numba's simulator")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="devices, simulator state, versions, CPU threads and BLAS",
                          description="Print what tilegrad finds on this machine.")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--device", choices=DEVICE_CHOICES, default=argparse.SUPPRESS,
                      help="`sim` shows the simulator switched on")
    info.set_defaults(run=cmd_info)

    inspect = sub.add_parser(
        "inspect", help="registers, shared/local memory and PTX of the CUDA kernels (no GPU needed)",
        description="Compile CUDA kernels to PTX for sm_90 (or --cc) and report the resources each uses. "
                    "Needs the cuda extra: pip install -e '.[cuda]'.")
    inspect.add_argument("kernels", nargs="*", metavar="KERNEL", help="kernel names (default: all)")
    inspect.add_argument("--ptx", action="store_true", help="print each kernel's PTX")
    inspect.add_argument("--cc", default="9.0", help="compute capability (default 9.0 = H100/H200)")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(run=cmd_inspect)

    device_help = "where to compute (default auto: cuda with a real GPU, else cpu); sim = the CUDA simulator"

    bench = sub.add_parser(
        "bench", help="time every op on the CPU (1 and all threads) and the GPU, against measured ceilings",
        description="Time GEMM, convolution, pooling, the RNN, optimizer updates and whole training steps on the "
                    "multi-core CPU and (when present) the GPU. Each row: median time after warm-up, GFLOP/s, GB/s, "
                    "percent of the roofline ceiling measured in the same run, GPU speedup over the best CPU row, "
                    "and the error against a float64 reference re-checked after timing. Versions sit side by side "
                    "(GEMM: naive, tiled, register-blocked 4x4 and 8x8, and split-K on the GPU; on the CPU BLAS split "
                    "over Numba's threads in OpenBLAS small-kernel tiles (blas_split) or one band per thread "
                    "(blas_bands), one BLAS call and the hand-written prange loop, with NumPy's matmul as the "
                    "yardstick for the 'vs BLAS' column; convolution: im2col and the CPU's per-image image_gemm). "
                    "Every CPU row samples for at least 0.3 s, and the CPU GEMM versions and NumPy's matmul are "
                    "timed in alternating blocks, so 'vs BLAS' is a paired ratio: this is a noisy-machine tool, "
                    "compare within a run.")
    bench.add_argument("--device", choices=DEVICE_CHOICES + ("all",), default=argparse.SUPPRESS,
                       help="cpu, cuda, all (both), auto (default: both when there is a GPU); sim: CPU rows only, "
                            "the simulator is never timed")
    bench.add_argument("--ops", default=None,
                       help="comma-separated subset of gemm,conv,pool,elementwise,rnn,optim,train")
    bench.add_argument("--quick", action="store_true", help="fewer cases and repeats (about a minute on 2 cores)")
    bench.add_argument("--threads", type=int, default=None, help="CPU threads for the multi-core rows "
                       "(default: all); the 1-thread rows always run")
    bench.add_argument("--peers", action="store_true", help="also run the cases through PyTorch when installed")
    bench.add_argument("--ranks", metavar="1,2,...", help="also time data-parallel training steps over these MPI "
                       "rank counts (needs the dist extra)")
    bench.add_argument("--json", metavar="FILE", help="write machine, ceilings and every row as JSON")
    bench.add_argument("--plot", metavar="FILE.png", help="write a PNG: percent of ceiling per row and a roofline")
    bench.set_defaults(run=cmd_bench)

    train = sub.add_parser("train", help="train mlp, lenet or rnn on digits or MNIST, with progress and a summary",
                           description="Train a model with tilegrad's engine. Defaults reach high accuracy on the "
                                       "bundled digits in well under a minute on 2 CPU cores.")
    train.add_argument("--model", choices=("mlp", "lenet", "rnn"), default="lenet")
    train.add_argument("--dataset", choices=("digits", "mnist"), default="digits",
                       help="digits: scikit-learn's bundled 8x8 digits (no download); mnist: IDX files in --data-dir")
    train.add_argument("--data-dir", help="folder with train-images-idx3-ubyte[.gz] etc. (MNIST or Fashion-MNIST)")
    train.add_argument("--device", choices=DEVICE_CHOICES, default=argparse.SUPPRESS, help=device_help)
    train.add_argument("--epochs", type=int, help="default: the model's recipe (mlp 20, lenet 10, rnn 15)")
    train.add_argument("--batch-size", type=int, help="default 32")
    train.add_argument("--optimizer", choices=("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"),
                       default="adam")
    train.add_argument("--lr", type=float, help="peak learning rate (cosine schedule); default per optimizer")
    train.add_argument("--seed", type=int, default=0, help="shuffling seed: same seed, same numbers on CPU")
    train.add_argument("--limit", type=int, metavar="N", help="use only the first N training and test samples "
                       "(tiny runs, e.g. in the simulator)")
    train.add_argument("--checkpoint", metavar="FILE", help="save model and optimizer here after every epoch")
    train.add_argument("--resume", metavar="FILE", help="continue from a checkpoint")
    train.add_argument("--json", metavar="FILE", help="write the summary and per-epoch history as JSON")
    train.add_argument("--plot", metavar="FILE.png", help="write loss and accuracy curves")
    train.set_defaults(run=cmd_train)

    check = sub.add_parser("check", help="every kernel against its reference, every layer by gradcheck: pass/fail",
                           description="Run the Hypothesis properties of every kernel and the gradient checks of "
                                       "every layer on the chosen device and print a pass/fail table; a failure "
                                       "shows the smallest failing input Hypothesis found. Exit status 1 on any "
                                       "failure: run it after editing a kernel.")
    check.add_argument("--device", choices=DEVICE_CHOICES, default=argparse.SUPPRESS, help=device_help)
    check.add_argument("--only", metavar="NAME", help="only checks whose name contains NAME (e.g. gemm, maxpool, adam)")
    check.set_defaults(run=cmd_check)

    profile = sub.add_parser("profile", help="per-layer forward and backward time of one training step",
                             description="Time each layer's forward and backward, the loss and the optimizer step "
                                         "of a training step (device synchronized around each part).")
    profile.add_argument("--model", choices=("mlp", "lenet", "rnn"), default="lenet")
    profile.add_argument("--batch-size", type=int, default=64)
    profile.add_argument("--steps", type=int, default=10, help="timed steps after 2 warm-up steps")
    profile.add_argument("--features", type=int, default=None, metavar="N",
                         help="mlp input width (default 64, the digits; 784 is the bench's MLP, MNIST-sized)")
    profile.add_argument("--device", choices=DEVICE_CHOICES, default=argparse.SUPPRESS, help=device_help)
    profile.add_argument("--json", metavar="FILE", help="write the table as JSON")
    profile.set_defaults(run=cmd_profile)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _prepare(getattr(args, "device", None))
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, TypeError, RuntimeError, OSError, ArithmeticError) as exc:
        _fail(exc)
        return 1


def _fail(exc) -> None:
    """One line; under MPI, the failing rank says it once and stops every other rank."""
    from engine.distributed import SIZE_VARIABLES

    if any(os.environ.get(name, "1") not in ("", "1") for name in SIZE_VARIABLES):
        import time

        from engine.distributed import get_world

        world = get_world()
        if not world.is_root:  # an error every rank hits is shown once, by rank 0, which stops them all
            time.sleep(1.0)
        print(f"error (rank {world.rank} of {world.size}): {exc}", file=sys.stderr, flush=True)
        time.sleep(0.5)  # the launcher forwards output asynchronously: let the line leave before the abort
        world.abort(1)
        os._exit(1)
    print(f"error: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
