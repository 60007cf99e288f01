"""``python cli.py predict``: classes and probabilities from a checkpoint, with the accuracy when labels are known."""

from __future__ import annotations

from .common import CliError, add_device_option, add_threads_option, check_output_file, use_threads, write_json

OUTPUT_HELP = ("write the predictions to P.npz (NumPy's savez): 'classes' (N,) int64, the predicted class of each "
               "sample; 'probabilities' (N, C) float32, the softmax of the logits (each row sums to 1); and "
               "'labels' (N,) int64 where labels are known")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict classes and probabilities with a checkpoint that train wrote",
        description="Load a checkpoint (from `train --checkpoint` or engine.save) and predict, in eval mode and in "
                    "batches: on the test split that train evaluates on (--dataset; the accuracy equals the test "
                    "accuracy train reported for that checkpoint, on the same device), or on samples from a .npy "
                    "file (--input: float32, shaped as the model reads them, e.g. (N, 1, 28, 28) for lenet, "
                    "(N, 64) for mlp and (N, 8, 8) for rnn on digits).")
    parser.add_argument("--checkpoint", metavar="FILE", required=True, help="a checkpoint of a classifier")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=("digits", "mnist"),
                        help="the test split train evaluates on (digits: bundled; mnist: IDX files in --data-dir)")
    source.add_argument("--input", metavar="X.npy", help="samples to classify, one .npy array (N, ...)")
    parser.add_argument("--data-dir", help="with --dataset mnist: the folder holding the IDX files")
    parser.add_argument("--labels", metavar="Y.npy", help="with --input: their true classes, (N,) integers")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="with --dataset: only the first N test samples (as `train --limit N` evaluates)")
    parser.add_argument("--batch-size", type=int, default=256, metavar="N", help="samples per forward (default 256)")
    add_device_option(parser)
    add_threads_option(parser)
    parser.add_argument("--output", metavar="P.npz", help=OUTPUT_HELP)
    parser.add_argument("--json", metavar="FILE", help="write the summary (accuracy, loss, samples, model) as JSON")
    parser.add_argument("--force", action="store_true",
                        help="let --output and --json replace a file of another kind (a checkpoint above all); "
                             "without it such a file is kept and predict stops before any work")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help="predict on --input samples holding NaN or inf (refused by default: their classes "
                             "and probabilities would be meaningless)")
    parser.set_defaults(run=run)


def _load_npy(option: str, path):
    from pathlib import Path

    import numpy as np

    if not Path(path).is_file():
        raise CliError(f"{option} {path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(6)
    # say what the file is instead of NumPy's advice (its allow_pickle hint misleads for a text file)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        kind = ("the file is empty" if not magic else "it looks like text" if magic.isascii()
                else "unrecognized contents")
        raise CliError(f"{option} {path}: not a NumPy .npy array ({kind}; write one with np.save)")
    try:
        value = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CliError(f"{option} {path}: a damaged .npy array ({str(exc).splitlines()[0]})") from None
    if not isinstance(value, np.ndarray):
        value.close()
        raise CliError(f"{option} {path}: an .npz archive, not one .npy array (np.save writes one)")
    return value


def _check_args(args) -> None:
    if args.input is None and args.labels:
        raise CliError("--labels goes with --input (--dataset brings its own labels)")
    if args.dataset is None and (args.data_dir or args.limit is not None):
        raise CliError("--data-dir and --limit go with --dataset")
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be positive, got {args.limit}")
    if args.batch_size < 1:
        raise CliError(f"--batch-size must be positive, got {args.batch_size}")
    if args.output and not args.output.lower().endswith(".npz"):
        raise CliError(f"--output {args.output}: end the name in .npz (it holds classes and probabilities)")
    import os

    read = [(option, path) for option, path in (("--checkpoint", args.checkpoint), ("--input", args.input),
                                                 ("--labels", args.labels)) if path]
    written = [(option, path) for option, path in (("--output", args.output), ("--json", args.json)) if path]
    seen = {}
    for option, path in read + written:  # reading and writing one file would destroy what is read
        key = os.path.realpath(path)
        if key in seen and (option, path) in written:
            raise CliError(f"{seen[key]} and {option} name the same file, {path}")
        seen.setdefault(key, option)
    if args.output:  # engine.outputs' rule: never over a file of another kind (a checkpoint) without --force
        check_output_file("--output", args.output, kind="predictions", force=args.force)
    if args.json:
        check_output_file("--json", args.json, kind="json", force=args.force)


def _check_finite_inputs(path, x) -> None:
    """--input samples hold no NaN or inf (a NaN sample would be predicted as class 0 with NaN probabilities)."""
    import numpy as np

    if not np.issubdtype(x.dtype, np.floating):
        return
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
        raise CliError(f"--input {path}: {int(np.isnan(x).sum())} NaN and {int(np.isinf(x).sum())} inf values in "
                       f"{len(rows)} of {len(x)} samples (the first: sample {rows[0]}); pass --allow-nonfinite to "
                       f"predict on them anyway")


def run(args) -> int:
    import time

    import numpy as np

    from engine import Device
    from engine.checkpoint import describe
    from engine.inference import check_inputs, dataset_for, load_classifier, predict

    _check_args(args)
    dev = Device(args.device or "auto")
    cpu_threads = use_threads(args.threads)
    model, meta = load_classifier(args.checkpoint, device=dev)
    if args.dataset:
        data = dataset_for(model, args.dataset, args.data_dir, args.limit)
        x, labels, source = data.x, data.y, f"the {args.dataset} test set"
    else:
        x = check_inputs(model, _load_npy("--input", args.input), what=f"--input {args.input}")
        if not args.allow_nonfinite:
            _check_finite_inputs(args.input, x)
        labels, source = None, args.input
        if args.labels:
            labels = _load_npy("--labels", args.labels)
            if labels.shape != (len(x),) or labels.dtype.kind not in "iu":
                raise CliError(f"--labels {args.labels}: expected {len(x)} integers (one per sample), got "
                               f"{labels.dtype} {labels.shape}")
    started = time.perf_counter()
    result = predict(model, x, labels=labels, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    epoch = meta.get("extra", {}).get("epoch")
    model_text = describe(meta["architecture"])
    n, classes = result["probabilities"].shape
    samples = f"{n} sample{'s' if n != 1 else ''}"
    print(f"{args.checkpoint}: {model_text}" + (f", epoch {epoch}" if epoch is not None else "") + f", on {dev!r}"
          + (f", {cpu_threads}" if dev.name == "cpu" else ""))
    if labels is not None:
        print(f"{source}: {samples}, accuracy {result['accuracy']:.4f} ({result['correct']}/{n}), "
              f"loss {result['loss']:.4f}")
    else:
        shown = " ".join(map(str, result["classes"][:20])) + (" ..." if n > 20 else "")
        print(f"{source}: {samples}, predicted classes {shown}")
    if args.output:
        from pathlib import Path

        arrays = {"classes": result["classes"], "probabilities": result["probabilities"]}
        if labels is not None:
            arrays["labels"] = np.asarray(labels, dtype=np.int64)
        from engine import outputs

        # a file object: savez keeps the name as given; written atomically, the folder checked before
        outputs.write_atomic(Path(args.output), lambda f: np.savez(f, **arrays))
        print(f"wrote {args.output}: classes ({n},) int64, probabilities ({n}, {classes}) float32")
    if args.json:
        summary = {"checkpoint": str(args.checkpoint), "model": model_text, "epoch": epoch, "device": repr(dev),
                   "source": args.dataset or args.input, "samples": n, "classes": classes,
                   "accuracy": result.get("accuracy"), "correct": result.get("correct"), "loss": result.get("loss"),
                   "class_counts": np.bincount(result["classes"], minlength=classes).tolist(),
                   "output": args.output, "seconds": seconds}
        write_json(args.json, summary)
    return 0
