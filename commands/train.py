"""``python cli.py train``: train a model on the bundled digits or MNIST, with progress and a summary."""

from __future__ import annotations

import argparse

from .common import MODEL_CHOICES, CliError, add_device_option, check_output_file, write_json

OPTIMIZER_CHOICES = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train mlp, lenet, rnn, lstm or gru on digits or MNIST, or charlm (a character language "
                      "model) on the bundled sonnets, with progress and a summary",
        description="Train a model with tilegrad's engine. Defaults reach high accuracy on the bundled digits in "
                    "about a minute or less on 2 CPU cores; charlm (Embedding, LSTM, Dense over each character) "
                    "reaches well under 3 bits per character on held-out sonnets in a few minutes, and `sample "
                    "--checkpoint F` writes text with it.")
    parser.add_argument("--model", choices=MODEL_CHOICES, default="lenet")
    parser.add_argument("--dataset", choices=("digits", "mnist", "sonnets"),
                        help="digits (the classifiers' default): scikit-learn's bundled 8x8 digits (no download); "
                             "mnist: IDX files in --data-dir; sonnets (charlm's, and its default): Shakespeare's "
                             "Sonnets, bundled, the last tenth held out")
    parser.add_argument("--data-dir", help="folder with train-images-idx3-ubyte[.gz] etc. (MNIST or Fashion-MNIST)")
    add_device_option(parser)
    from .common import add_threads_option  # (local: keeps the shared import line above as it was)

    add_threads_option(parser)
    parser.add_argument("--epochs", type=int, metavar="N",
                        help="train to epoch N (default: the model's recipe: mlp 20, lenet 10, rnn 15, lstm 15, "
                             "gru 15, charlm 20); with --resume, N is still the total: a checkpoint at epoch 34 "
                             "with --epochs 200 trains epochs 35 to 200, and one already at epoch N trains nothing")
    parser.add_argument("--batch-size", type=int, help="default 32")
    parser.add_argument("--optimizer", choices=OPTIMIZER_CHOICES, default="adam")
    parser.add_argument("--lr", type=float, help="peak learning rate (cosine schedule); default per optimizer")
    parser.add_argument("--seed", type=int, default=0, help="shuffling seed: same seed, same numbers on CPU")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N training and test samples "
                        "(tiny runs, e.g. in the simulator)")
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="save model and optimizer here after every epoch (its folder must exist); an "
                             "existing FILE is replaced only when it holds the same model and optimizer (an "
                             "earlier run of this one), else the run stops before training unless --force")
    parser.add_argument("--force", action="store_true",
                        help="let --checkpoint replace a file that holds another model or optimizer, or no "
                             "checkpoint at all")
    parser.add_argument("--resume", metavar="FILE",
                        help="continue from a checkpoint (same --model and --optimizer) up to --epochs in total")
    parser.add_argument("--json", metavar="FILE", help="write the summary and per-epoch history as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="write loss and accuracy curves (.png, .pdf, .svg, ...)")
    parser.add_argument("--allreduce", choices=("overlap", "blocking"), default="overlap",
                        help="under mpiexec: overlap (default) reduces the gradients in buckets, each started while "
                             "backward computes the layers below; blocking: one allreduce after backward")
    parser.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                        help="capture each batch shape's training step as one CUDA graph and replay it (default: on "
                             "a real GPU; in the simulator --cuda-graph emulates it)")
    parser.add_argument("--bucket-mb", type=float, default=1.0, metavar="MB",
                        help="--allreduce overlap: about this many MiB of gradients per bucket (default 1.0)")
    parser.set_defaults(run=run)


def run(args) -> int:
    import time

    _check_outputs(args)  # a bad output path is found now, not after training

    import optim as O
    from engine import Device, fit, load
    from engine.checkpoint import save_interrupted
    from engine.distributed import get_world
    from engine.recipes import RECIPES, build_model, build_optimizer, build_training, load_data

    recipe = RECIPES[args.model]
    args.dataset = args.dataset or recipe.dataset  # digits, or charlm's text
    world = get_world()  # under mpiexec: data-parallel ranks; rank 0 alone prints, plots and writes
    if (args.device or "auto") != "cpu":
        world.bind_gpu()
    dev = Device(args.device or "auto")
    from .common import use_threads

    cpu_threads = use_threads(args.threads)
    train_set, test_set = load_data(args.model, args.dataset, args.data_dir)
    if args.limit is not None:
        if args.limit < 1:
            raise CliError(f"--limit must be positive, got {args.limit}")
        train_set, test_set = train_set.head(args.limit), test_set.head(args.limit)
    epochs = recipe.epochs if args.epochs is None else args.epochs  # the total, a resumed run's included
    batch_size = recipe.batch_size if args.batch_size is None else args.batch_size
    if epochs < 1 or batch_size < 1:
        raise CliError("--epochs and --batch-size must be positive")
    model = build_model(args.model, dev, train_set.x)
    optimizer = build_optimizer(args.optimizer, model.parameters(), args.lr, args.model)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, quiet=not world.is_root)
    start_epoch = 0
    if args.resume:
        _check_same_run(args.resume, model, args, resuming=True)
        _, meta = load(args.resume, model=model, optimizer=optimizer)
        start_epoch = int(meta.get("extra", {}).get("epoch", 0))
        if start_epoch >= epochs:
            console.print(f"{args.resume} already holds epoch {start_epoch}, and --epochs {epochs} is the total "
                          f"to reach: nothing to train (give a larger --epochs to train further)",
                          markup=False, highlight=False, soft_wrap=True)
            return 0
        console.print(f"resuming {args.resume} at epoch {start_epoch} of {epochs}: {epochs - start_epoch} to go",
                      markup=False, highlight=False, soft_wrap=True)
    if args.checkpoint and not args.force:
        _check_same_run(args.checkpoint, model, args, resuming=False)
    steps = epochs * -(-len(train_set) // batch_size)  # the schedule of an uninterrupted run of `epochs`
    optimizer.schedule = O.cosine_lr(optimizer.base_lr, steps)
    # the classifiers: cross-entropy, evaluated on the test split; charlm: per character, bits per char held out
    loss_layer, eval_data, recipe_callbacks = build_training(args.model, model, test_set)

    ranks = f" x {world.size} ranks (global batch {batch_size})" if world.distributed else ""
    console.print(f"training {args.model} on {args.dataset} ({len(train_set)} train / {len(test_set)} test) on "
                  f"{dev!r}{ranks}: {epochs - start_epoch} epochs, batch {batch_size}, {args.optimizer} "
                  f"lr {optimizer.base_lr:g}" + (f"; {cpu_threads}" if dev.name == "cpu" else ""))
    if world.distributed:
        console.print(f"gradients: --allreduce {args.allreduce}"
                      + (f" in {args.bucket_mb:g} MB buckets" if args.allreduce == "overlap" else "")
                      + f", through {world.transport(dev)}", markup=False, highlight=False, soft_wrap=True)
    started = time.perf_counter()
    history = []
    interrupted = False
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
                acc += f"  held-out {info['bits_per_char']:.3f} bits/char" if "bits_per_char" in info else ""
                progress.update(task, description=f"loss {info['loss']:.4f}  train acc {info['train_accuracy']:.4f}"
                                                   f"{acc}  {info['samples_per_s']:,.0f} samples/s")

        try:
            fit(model, loss_layer, optimizer, train_set, epochs=epochs - start_epoch, batch_size=batch_size,
                eval_data=eval_data, callbacks=[*recipe_callbacks, on_event], seed=args.seed,
                checkpoint=args.checkpoint,
                start_epoch=start_epoch, allreduce=args.allreduce, bucket_mb=args.bucket_mb,
                cuda_graph=getattr(args, "cuda_graph", None))
        except KeyboardInterrupt:
            interrupted = True  # saved and reported below, once the progress display has stopped
    if interrupted:
        message = save_interrupted(model, optimizer, checkpoint=args.checkpoint,
                                   fallback=f"interrupted-{args.model}.npz", start_epoch=start_epoch,
                                   epochs_done=start_epoch + len(history), seed=args.seed,
                                   resume_flags="" if args.epochs is None else f" --epochs {epochs}")
        if message:
            console.print(message, markup=False, highlight=False, soft_wrap=True)
        return 130
    seconds = time.perf_counter() - started
    final = history[-1]
    if not world.is_root:
        return 0
    summary = {"model": args.model, "dataset": args.dataset, "device": repr(dev), "epochs": epochs,
               "world_size": world.size, "allreduce": args.allreduce if world.distributed else None,
               "batch_size": batch_size, "optimizer": args.optimizer, "lr": optimizer.base_lr,
               "final_loss": final["loss"], "train_accuracy": final["train_accuracy"],
               "test_accuracy": final.get("test_accuracy"),
               "samples_per_s": sum(h["samples_per_s"] for h in history) / len(history), "seconds": seconds,
               "history": history}
    bpc = ""
    if "bits_per_char" in final:  # charlm: the held-out text's mean cross-entropy per character, in bits
        summary["bits_per_char"] = final["bits_per_char"]
        bpc = f", {final['bits_per_char']:.3f} bits per character held out"
    print(f"{args.model} on {args.dataset}: test accuracy {summary['test_accuracy']:.4f}{bpc}, final loss "
          f"{summary['final_loss']:.4f}, {summary['samples_per_s']:,.0f} samples/s, {seconds:.1f} s on {dev!r}")
    if args.json:
        write_json(args.json, summary)
    if args.plot:
        _plot_history(history, args.plot, f"{args.model} on {args.dataset} ({args.optimizer}, {dev!r})")
    return 0


def _plot_formats() -> tuple[str, ...]:
    """The extensions --plot accepts: matplotlib's formats, the common three first."""
    common = ("png", "pdf", "svg")
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:  # no matplotlib: the plot fails when written, as before
        return ()
    return common + tuple(sorted(set(FigureCanvasBase.get_supported_filetypes()) - set(common)))


def _check_outputs(args) -> None:
    """Every file the run will write can be written, and no two of them (or the resumed one) are the same."""
    import os

    if args.checkpoint:
        check_output_file("--checkpoint", args.checkpoint, replace=True)
    if args.json:
        check_output_file("--json", args.json)
    if args.plot:
        check_output_file("--plot", args.plot, suffixes=_plot_formats())
    seen = {}
    for option, path in (("--checkpoint", args.checkpoint), ("--json", args.json), ("--plot", args.plot),
                         ("--resume", args.resume)):
        if not path:
            continue
        key = os.path.realpath(path)
        if key in seen and {seen[key], option} != {"--checkpoint", "--resume"}:
            raise CliError(f"{seen[key]} and {option} name the same file, {path}")
        seen.setdefault(key, option)


_OPTIMIZER_NAMES = {"Adam": "adam", "AdamW": "adamw", "RMSprop": "rmsprop", "Adagrad": "adagrad"}


def _optimizer_name(saved: dict | None) -> str:
    """The --optimizer that made a checkpoint's optimizer state (its class name if the CLI has none)."""
    if not saved:
        return "no optimizer"
    if saved.get("type") == "SGD":
        return "momentum" if saved.get("hyper", {}).get("momentum") else "sgd"
    return _OPTIMIZER_NAMES.get(saved.get("type"), str(saved.get("type")))


def _model_name(arch: dict) -> str | None:
    """The --model whose layers (types, in order) an architecture has; None for any other model."""
    from engine import Device
    from engine.checkpoint import architecture
    from engine.models import char_lm, gru_classifier, lenet, lstm_classifier, mlp, rnn_classifier

    types = [spec.get("type") for spec in arch.get("layers", [])] if arch.get("kind") == "sequential" else None
    cpu = Device("cpu")
    for name, make in (("mlp", lambda: mlp(cpu, in_features=1)), ("lenet", lambda: lenet(cpu)),
                       ("rnn", lambda: rnn_classifier(cpu, input_size=1)),
                       ("lstm", lambda: lstm_classifier(cpu, input_size=1)),
                       ("gru", lambda: gru_classifier(cpu, input_size=1)), ("charlm", lambda: char_lm(cpu))):
        if types == [spec["type"] for spec in architecture(make())["layers"]]:
            return name
    return None


def _check_same_run(path, model, args, *, resuming: bool) -> None:
    """--resume FILE, or an existing --checkpoint FILE, must hold this run's model and optimizer."""
    from pathlib import Path

    from engine.checkpoint import CheckpointError, architecture, describe, read

    if not resuming and not Path(path).exists():
        return
    try:
        meta, _ = read(path)
    except CheckpointError as exc:
        if resuming:
            raise
        raise CliError(f"refusing to overwrite {path}: {exc.problem}; pass --force to replace it, or choose "
                       f"another --checkpoint file") from None
    saved_arch, ours = meta["architecture"], architecture(model)
    saved_opt = _optimizer_name(meta.get("optimizer"))
    if saved_arch == ours and saved_opt == args.optimizer:
        return
    saved_name = _model_name(saved_arch)
    if saved_arch == ours:
        saved, this = f"{args.model} with {saved_opt}", f"{args.model} with {args.optimizer}"
    elif saved_name and saved_name != args.model:
        saved, this = f"{saved_name} with {saved_opt}", f"{args.model} with {args.optimizer}"
    else:  # the same --model for inputs of another size (another --dataset), or a model built in Python
        saved, this = (f"{describe(saved_arch)} with {saved_opt}",
                       f"{args.model} {describe(ours)} with {args.optimizer}")
    epoch = meta.get("extra", {}).get("epoch")
    saved += f" at epoch {epoch}" if epoch is not None else ""
    # what would continue that run: the --model and --optimizer it names, when the CLI can build its model
    flags = ""
    if saved_name and saved_opt in OPTIMIZER_CHOICES and (saved_arch == ours or saved_name != args.model):
        flags = f"--model {saved_name} --optimizer {saved_opt}"
    if resuming:
        hint = f"; to continue it, pass {flags}" if flags else ""
        raise CliError(f"--resume {path} holds a checkpoint of {saved}, but this run trains {this}{hint}")
    hint = f"or --resume {path} {flags} to continue that run" if flags else "or choose another --checkpoint file"
    raise CliError(f"refusing to overwrite {path}: it holds a checkpoint of {saved}, but this run trains {this}; "
                   f"pass --force to overwrite it, {hint}")


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
