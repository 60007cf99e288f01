"""``python cli.py profile``: where one training step's time goes, layer by layer."""

from __future__ import annotations

from .common import (
    MODEL_CHOICES,
    add_device_option,
    add_threads_option,
    check_finite,
    check_output_file,
    console,
    use_threads,
    write_json,
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile", help="per-layer forward and backward time of one training step",
        description="Time each layer's forward and backward, the loss and the optimizer step "
                    "of a training step (on a CPU: synchronized around each part; on a cuda device: host time of "
                    "each Python call and GPU time from CUDA events, launch-bound parts marked).")
    parser.add_argument("--model", choices=MODEL_CHOICES, default="lenet")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per step, >= 1 (default 64)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps after 2 warm-up steps, >= 1 (default 10)")
    parser.add_argument("--features", type=int, default=None, metavar="N",
                        help="mlp input width (default 64, the digits; 784 is the bench's MLP, MNIST-sized)")
    add_device_option(parser)
    add_threads_option(parser)
    parser.add_argument("--json", metavar="FILE", help="write the table as JSON")
    parser.add_argument("--force", action="store_true", help="let --json replace a file of another kind")
    parser.set_defaults(run=run)


def run(args) -> int:
    import layers as L
    from engine import Device
    from engine.profiler import launch_bound_note, profile_step, random_batch
    from engine.recipes import build_model, build_optimizer

    check_finite("--batch-size", args.batch_size, minimum=1)  # before any work, named by the flag (not a kernel's)
    check_finite("--steps", args.steps, minimum=1)
    if args.json:
        check_output_file("--json", args.json, kind="json", force=args.force)
    dev = Device(args.device or "auto")
    cpu_threads = use_threads(args.threads)
    if args.features is not None and args.model != "mlp":
        raise ValueError(f"--features: only the mlp takes a feature count (got --model {args.model})")
    if args.features is not None and args.features < 1:
        raise ValueError(f"--features: expected a positive count, got {args.features}")
    x, y = random_batch(args.model, args.batch_size, mlp_features=args.features or 64)
    model = build_model(args.model, dev, x)
    optimizer = build_optimizer("adam", model.parameters(), None, args.model)
    rows = profile_step(model, L.SoftmaxCrossEntropy(), optimizer, x, y, steps=args.steps)
    note = launch_bound_note(rows)
    if args.json:
        write_json(args.json, {"model": args.model, "device": repr(dev), "batch_size": args.batch_size, "parts": rows,
                               "cpu_threads": cpu_threads,
                               **({"note": note} if note else {})})
    from rich.table import Table

    split = "host_ms" in rows[-1]  # a cuda device: host time and GPU time apart
    shape = f" ({x.shape[1]} inputs)" if args.model == "mlp" else ""
    how = "host: the Python call, GPU: CUDA events on the stream" if split else "synchronized"
    table = Table(title=f"one training step of {args.model}{shape}, batch {args.batch_size}, on {dev!r} "
                        f"(median of {args.steps} steps, {how}"
                        + (f"; {cpu_threads})" if dev.name == "cpu" else ")"), title_justify="left")
    table.add_column("part")
    if split:
        table.add_column("host ms", justify="right")
        table.add_column("GPU ms", justify="right")
        table.add_column("bound", justify="left")
    else:
        table.add_column("ms", justify="right")
    table.add_column("% of step", justify="right")
    table.add_column("", justify="left")
    for r in rows:
        bar = "" if r["part"].startswith("total") else "█" * int(round(r["percent"] / 2))
        if split:
            gpu = "–" if r["gpu_ms"] is None else f"{r['gpu_ms']:.3f}"
            table.add_row(r["part"], f"{r['host_ms']:.3f}", gpu, r["bound"] or "–", f"{r['percent']:.1f}", bar)
        else:
            table.add_row(r["part"], f"{r['median_ms']:.3f}", f"{r['percent']:.1f}", bar)
    console().print(table)
    if note:
        console().print(note, soft_wrap=True, highlight=False, markup=False)
    return 0
