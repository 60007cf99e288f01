"""``python cli.py train``: train a model on the bundled digits or MNIST, with progress and a summary."""

from __future__ import annotations

import argparse

from .common import MODEL_CHOICES, CliError, add_device_option, check_finite, check_output_file, write_json

OPTIMIZER_CHOICES = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train mlp, lenet, rnn, lstm or gru on digits or MNIST, or charlm (a character language "
                      "model) on the bundled sonnets, with progress and a summary",
        description="Train a model with tilegrad's engine. Defaults reach high accuracy on the bundled digits in "
                    "about a minute or less on 2 CPU cores; charlm (Embedding, LSTM, Dense over each character) "
                    "reaches about 2.5 bits per character on held-out sonnets in under a minute, and `sample "
                    "--checkpoint F` writes text with it.")
    parser.add_argument("--model", choices=MODEL_CHOICES, default="lenet")
    parser.add_argument("--dataset", metavar="digits|mnist|sonnets|npz:FILE",
                        help="digits (the classifiers' default): scikit-learn's bundled 8x8 digits (no download); "
                             "mnist: IDX files in --data-dir; sonnets (charlm's, and its default): Shakespeare's "
                             "Sonnets, bundled, the last tenth held out; npz:FILE: your own arrays x (N, ...) "
                             "floats and y (N,) labels 0, 1, ... (np.savez; x_test, y_test too, else a fifth is "
                             "held out), x shaped as the model reads: mlp (N, features), lenet (N, 1, 28, 28), "
                             "rnn/lstm/gru (N, steps, features)")
    parser.add_argument("--text", metavar="FILE", help="--model charlm: train on this UTF-8 text file instead of "
                        "the sonnets (newline and printable ASCII; tabs and CRLF line ends are converted)")
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
    parser.add_argument("--seed", type=int, default=None,
                        help="shuffling seed, >= 0: same seed, same numbers on CPU (default 0; with --resume, the "
                             "checkpoint's, so the resumed run shuffles as the uninterrupted one would; another "
                             "--seed applies from the resumed epoch on, and the header says so)")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N training and test samples "
                        "(tiny runs, e.g. in the simulator)")
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="save model and optimizer here after every epoch (its folder must exist); an "
                             "existing FILE is replaced only when it holds the same model and optimizer (an "
                             "earlier run of this one), else the run stops before training unless --force")
    parser.add_argument("--force", action="store_true",
                        help="let --checkpoint replace a file that holds another model or optimizer, or no "
                             "checkpoint at all (and --json, --plot a file of another kind)")
    parser.add_argument("--resume", metavar="FILE",
                        help="continue from a checkpoint (same --model and --optimizer) up to --epochs in total; "
                             "its lr, batch size and seed are kept unless --lr, --batch-size, --seed are given, "
                             "which apply (the header says what changed); another --model or --optimizer is "
                             "refused (its state would not fit); --dataset, --limit and the --allreduce settings "
                             "apply as given (the checkpoint does not record them)")
    parser.add_argument("--quiet", action="store_true",
                        help="no header and no progress: only the final line (and errors); with --json FILE, for "
                             "scripts")
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
    parser.add_argument("--clip-grad", type=float, metavar="NORM",
                        help="before every update, scale the gradients so that their global L2 norm is at most NORM "
                             "(PyTorch's clip_grad_norm_); 0 turns it off; default: the recipe's (see "
                             "docs/benchmarks.md, gradient clipping)")
    parser.set_defaults(run=run)


def run(args) -> int:
    """Bad values and output paths are found before any work; --checkpoint's writer lock is held throughout."""
    from engine import outputs
    from engine.distributed import get_world

    _check_numbers(args)
    _check_outputs(args)  # a bad output path is found now, not after training
    if not args.checkpoint or not get_world().is_root:  # under mpiexec rank 0 alone writes, and locks
        return _train(args)
    try:
        with outputs.writing(args.checkpoint, "--checkpoint"):  # a second train on this file is refused now
            return _train(args)
    except outputs.OutputError as exc:
        raise CliError(str(exc)) from None


def _check_numbers(args) -> None:
    """Every number given is finite and in range, named by its flag (a NaN --lr would fail mid-epoch)."""
    check_finite("--lr", args.lr, minimum=0)
    check_finite("--seed", args.seed, minimum=0)
    check_finite("--bucket-mb", args.bucket_mb, above=0)
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--limit", args.limit)):
        check_finite(option, value, minimum=1)


def _train(args) -> int:
    import time

    import optim as O
    from engine import Device, fit, load
    from engine.checkpoint import save_interrupted
    from engine.distributed import get_world
    from engine.recipes import RECIPES, build_model, build_optimizer, build_training, classes_of, load_data

    recipe = RECIPES[args.model]
    if getattr(args, "text", None):
        if args.dataset:
            raise CliError(f"give --text or --dataset, not both (--text {args.text}, --dataset {args.dataset})")
        args.dataset = f"text:{args.text}"
    clip_grad = _clip_grad(getattr(args, "clip_grad", None), recipe)  # a bad value is named before any work
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
    own_labels = args.dataset.startswith("npz:")  # the output layer as wide as the labels need
    model = build_model(args.model, dev, train_set.x, **({"classes": classes_of(train_set, test_set)}
                                                         if own_labels else {}))
    optimizer = build_optimizer(args.optimizer, model.parameters(), args.lr, args.model)

    from rich.console import Console

    console = Console(stderr=True, quiet=not world.is_root or args.quiet)
    start_epoch, seed, resumed = 0, 0 if args.seed is None else args.seed, ""
    if args.resume:
        _check_same_run(args.resume, model, args, resuming=True)
        _, meta = load(args.resume, model=model, optimizer=optimizer)
        start_epoch = int(meta.get("extra", {}).get("epoch", 0))
        batch_size, seed, resumed = _resumed_settings(args, meta, optimizer, batch_size)
        if start_epoch >= epochs:
            console.print(f"{args.resume} already holds epoch {start_epoch}, and --epochs {epochs} is the total "
                          f"to reach: nothing to train (give a larger --epochs to train further)",
                          markup=False, highlight=False, soft_wrap=True)
            return 0
        console.print(f"resuming {args.resume} at epoch {start_epoch} of {epochs}: {epochs - start_epoch} to go"
                      f"; {resumed}", markup=False, highlight=False, soft_wrap=True)
    if args.checkpoint and not args.force:
        _check_same_run(args.checkpoint, model, args, resuming=False)
    steps = epochs * -(-len(train_set) // batch_size)  # the schedule of an uninterrupted run of `epochs`
    optimizer.schedule = O.cosine_lr(optimizer.base_lr, steps)
    # the classifiers: cross-entropy, evaluated on the test split; charlm: per character, bits per char held out
    loss_layer, eval_data, recipe_callbacks = build_training(args.model, model, test_set)

    ranks = f" x {world.size} ranks (global batch {batch_size})" if world.distributed else ""
    console.print(f"training {args.model} on {args.dataset} ({len(train_set)} train / {len(test_set)} test) on "
                  f"{dev!r}{ranks}: {epochs - start_epoch} epochs, batch {batch_size}, {args.optimizer} "
                  f"lr {optimizer.base_lr:g}", markup=False, highlight=False, soft_wrap=True)
    if dev.name == "cpu":  # a line of its own: the header stays within 100 columns
        console.print(cpu_threads, markup=False, highlight=False, soft_wrap=True)
    if clip_grad:
        console.print(f"gradients clipped to a global L2 norm of {clip_grad:g} before every update",
                      markup=False, highlight=False, soft_wrap=True)
    if world.distributed:
        console.print(f"gradients: --allreduce {args.allreduce}"
                      + (f" in {args.bucket_mb:g} MB buckets" if args.allreduce == "overlap" else "")
                      + f", through {world.transport(dev)}", markup=False, highlight=False, soft_wrap=True)
    started = time.perf_counter()
    history = []
    interrupted = False
    with _progress(console, epochs) as progress:
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
                progress.update(task, description=epoch_description(info))

        try:
            fit(model, loss_layer, optimizer, train_set, epochs=epochs - start_epoch, batch_size=batch_size,
                eval_data=eval_data, callbacks=[*recipe_callbacks, on_event], seed=seed,
                checkpoint=args.checkpoint,
                start_epoch=start_epoch, allreduce=args.allreduce, bucket_mb=args.bucket_mb,
                cuda_graph=getattr(args, "cuda_graph", None), clip_grad=clip_grad)
        except KeyboardInterrupt:
            interrupted = True  # saved and reported below, once the progress display has stopped
    if interrupted:
        message = save_interrupted(model, optimizer, checkpoint=args.checkpoint,
                                   fallback=f"interrupted-{args.model}.npz", start_epoch=start_epoch,
                                   epochs_done=start_epoch + len(history), seed=seed,
                                   extra={"batch_size": batch_size},
                                   resume_flags="" if args.epochs is None else f" --epochs {epochs}")
        if message and args.quiet:  # what to resume from is never quiet
            import sys

            print(message, file=sys.stderr, flush=True)
        elif message:
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
    summary["clip_grad"] = clip_grad
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


def _resumed_settings(args, meta, optimizer, batch_size):
    """(batch size, seed, what the header says) of a resumed run: the checkpoint's lr, batch size and seed
    unless given on the command line, where what is given applies and the header names the old value."""
    extra = meta.get("extra", {})
    said = []
    saved_lr = optimizer.base_lr  # load_state_dict restored it
    if args.lr is not None and args.lr != saved_lr:
        optimizer.base_lr = optimizer.lr = float(args.lr)
        said.append(f"lr {args.lr:g} (was {saved_lr:g} in the checkpoint)")
    else:
        said.append(f"lr {saved_lr:g} from the checkpoint")
    saved_batch = extra.get("batch_size")
    if args.batch_size is None and saved_batch:
        batch_size = int(saved_batch)
        said.append(f"batch {batch_size} from the checkpoint")
    elif saved_batch and batch_size != saved_batch:
        said.append(f"batch {batch_size} (was {saved_batch} in the checkpoint)")
    saved_seed = extra.get("seed")
    if args.seed is None:
        seed = int(saved_seed or 0)
        said.append(f"seed {seed} from the checkpoint")
    else:
        seed = args.seed
        if saved_seed is not None and seed != saved_seed:
            said.append(f"seed {seed} (was {saved_seed} in the checkpoint: the shuffles from here on differ from "
                        f"the uninterrupted run's)")
        else:
            said.append(f"seed {seed}")
    return batch_size, seed, ", ".join(said)


def epoch_description(info: dict) -> str:
    """An epoch's numbers in one short line (within 100 columns with the progress bar, char LM's included)."""
    text = f"loss {info['loss']:.4f}  acc {info['train_accuracy']:.4f}"
    if "test_accuracy" in info:
        text += f"  test acc {info['test_accuracy']:.4f}"
    if "bits_per_char" in info:
        text += f"  held-out {info['bits_per_char']:.3f} bits/char"
    return text + f"  {info['samples_per_s']:,.0f} samples/s"


PROGRESS_BAR_WIDTH = 10  # with the longest epoch line (charlm's), the display fits 100 columns


def _progress(console, epochs: int):
    """The progress display: a live bar per epoch on a terminal; one plain line per epoch (and per 10% of an
    epoch of 100 batches or more), flushed at once, in a pipe or a log file (``train ... | cat``)."""
    import sys

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if console.is_terminal and sys.stdout.isatty():
        return Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(bar_width=PROGRESS_BAR_WIDTH),
                        TextColumn("{task.description}"), TimeElapsedColumn(), console=console)
    return PlainProgress(console, epochs)


class PlainProgress:
    """The progress display's ``add_task``/``update`` as plain lines, each flushed as it is written."""

    def __init__(self, console, epochs: int):
        self.console, self.epochs, self.tasks = console, epochs, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        last = self.tasks.get(len(self.tasks) - 1)
        if last and not last["done"] and last["completed"]:  # stopped mid-epoch (Ctrl-C): where it stood
            self._line(f"epoch {last['epoch']}/{self.epochs}  {100 * last['completed'] // last['total']:3d}%  "
                       f"{last['description']}  (stopped)")
        return False

    def add_task(self, description, total, epoch, **_):
        import time

        task = len(self.tasks)
        self.tasks[task] = {"total": total, "epoch": epoch, "next": 1, "first": None, "completed": 0,
                            "description": description, "done": False, "started": time.perf_counter()}
        return task

    def update(self, task, completed=None, description=""):
        import time

        t = self.tasks[task]
        t["description"] = description
        if completed is None:  # the epoch's end: its record
            t["done"] = True
            seconds = time.perf_counter() - t["started"]
            self._line(f"epoch {t['epoch']}/{self.epochs}  {description}  {seconds:.1f} s")
            return
        t["first"], t["completed"] = t["first"] or completed, completed
        if t["total"] >= 100 * t["first"] and completed < t["total"] and 10 * completed >= t["next"] * t["total"]:
            self._line(f"epoch {t['epoch']}/{self.epochs}  {100 * completed // t['total']:3d}%  {description}")
            while t["next"] * t["total"] <= 10 * completed:  # the next tenth of the epoch
                t["next"] += 1

    def _line(self, text: str) -> None:
        if not self.console.quiet:
            self.console.file.write(text + "\n")
            self.console.file.flush()


def _clip_grad(value, recipe) -> float | None:
    """--clip-grad NORM as fit's clip_grad: None when off (0, or not given and the recipe clips nothing)."""
    import math

    if value is None:
        return recipe.clip_grad
    if not math.isfinite(value) or value < 0:
        raise CliError(f"--clip-grad must be a positive number (0 turns clipping off), got {value}")
    return value or None


def _plot_formats() -> tuple[str, ...]:
    """The extensions --plot accepts: matplotlib's formats, the common three first."""
    common = ("png", "pdf", "svg")
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:  # no matplotlib: the plot fails when written, as before
        return ()
    return common + tuple(sorted(set(FigureCanvasBase.get_supported_filetypes()) - set(common)))


def _check_outputs(args) -> None:
    """Every file the run will write can be written (engine.outputs' rule: an existing --json or --plot file of
    another kind, a checkpoint above all, is kept unless --force), and no two of them (or the resumed one) are
    the same. An existing --checkpoint file is checked against the model once it is built (_check_same_run)."""
    import os

    if args.checkpoint:
        check_output_file("--checkpoint", args.checkpoint, replace=True)
    if args.json:
        check_output_file("--json", args.json, kind="json", force=args.force)
    if args.plot:
        check_output_file("--plot", args.plot, suffixes=_plot_formats(), kind="plot", force=args.force)
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

    from engine.checkpoint import read

    if not resuming:  # engine.outputs' rule, with this run's test of "the same run"
        if Path(path).exists():
            check_output_file("--checkpoint", path, kind="checkpoint", force=args.force,
                              same_run=lambda meta: _another_run(path, meta, model, args, resuming=False))
        return
    meta, _ = read(path)
    reason = _another_run(path, meta, model, args, resuming=True)
    if reason:
        raise CliError(reason)


def _another_run(path, meta, model, args, *, resuming: bool) -> str | None:
    """Why ``meta`` (of --resume or --checkpoint ``path``) is not this run's model and optimizer; None if it is."""
    from engine.checkpoint import architecture, describe

    saved_arch, ours = meta["architecture"], architecture(model)
    saved_opt = _optimizer_name(meta.get("optimizer"))
    if saved_arch == ours and saved_opt == args.optimizer:
        return None
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
        return f"--resume {path} holds a checkpoint of {saved}, but this run trains {this}{hint}"
    hint = f"or --resume {path} {flags} to continue that run" if flags else "or choose another --checkpoint file"
    return (f"refusing to overwrite {path}: it holds a checkpoint of {saved}, but this run trains {this}; "
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
    from pathlib import Path

    from engine import outputs

    outputs.write_atomic(Path(path), lambda f: fig.savefig(f, dpi=110, format=Path(path).suffix[1:].lower()))
    plt.close(fig)
