"""``python cli.py train``: train a model on the bundled digits or MNIST, with progress and a summary."""

from __future__ import annotations

from .common import MODEL_CHOICES, CliError, add_device_option, write_json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train mlp, lenet or rnn on digits or MNIST, with progress and a summary",
        description="Train a model with tilegrad's engine. Defaults reach high accuracy on the "
                    "bundled digits in well under a minute on 2 CPU cores.")
    parser.add_argument("--model", choices=MODEL_CHOICES, default="lenet")
    parser.add_argument("--dataset", choices=("digits", "mnist"), default="digits",
                        help="digits: scikit-learn's bundled 8x8 digits (no download); mnist: IDX files in --data-dir")
    parser.add_argument("--data-dir", help="folder with train-images-idx3-ubyte[.gz] etc. (MNIST or Fashion-MNIST)")
    add_device_option(parser)
    parser.add_argument("--epochs", type=int, help="default: the model's recipe (mlp 20, lenet 10, rnn 15)")
    parser.add_argument("--batch-size", type=int, help="default 32")
    parser.add_argument("--optimizer", choices=("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"),
                        default="adam")
    parser.add_argument("--lr", type=float, help="peak learning rate (cosine schedule); default per optimizer")
    parser.add_argument("--seed", type=int, default=0, help="shuffling seed: same seed, same numbers on CPU")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N training and test samples "
                        "(tiny runs, e.g. in the simulator)")
    parser.add_argument("--checkpoint", metavar="FILE", help="save model and optimizer here after every epoch")
    parser.add_argument("--resume", metavar="FILE", help="continue from a checkpoint")
    parser.add_argument("--json", metavar="FILE", help="write the summary and per-epoch history as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="write loss and accuracy curves")
    parser.set_defaults(run=run)


def run(args) -> int:
    import time

    import layers as L
    import optim as O
    from engine import Device, fit, load
    from engine.checkpoint import save_interrupted
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
            message = save_interrupted(model, optimizer, checkpoint=args.checkpoint,
                                       fallback=f"interrupted-{args.model}.npz", start_epoch=start_epoch,
                                       epochs_done=start_epoch + len(history), seed=args.seed)
            if message:
                console.print(f"\n{message}")
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
        write_json(args.json, summary)
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
