"""``python cli.py summary``: a model's layers, output shapes and parameter counts, and the total."""

from __future__ import annotations

from .common import MODEL_CHOICES, CliError, add_device_option, write_json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "summary", help="a model's layers, output shapes and parameter counts (PyTorch users: torchinfo)",
        description="Print each layer of a model with its output shape (N is the batch) and its parameter count, "
                    "and the total, by running one sample through it in eval mode: --model M for the model train "
                    "builds (on the bundled data's shapes), or --checkpoint F for a saved one.")
    parser.add_argument("--model", choices=MODEL_CHOICES, default="lenet")
    parser.add_argument("--checkpoint", metavar="FILE", help="summarize the model in this checkpoint instead")
    parser.add_argument("--input-shape", metavar="D1,D2,...",
                        help="one sample's shape without the batch axis, e.g. 28,8 for 28 time steps of 8 features "
                             "(default: the data the model trains on, or what the checkpoint's first layer fixes)")
    parser.add_argument("--mlp-features", type=int, default=64, metavar="N",
                        help="--model mlp: its input width (default 64, the digits; 784 for MNIST)")
    add_device_option(parser)
    parser.add_argument("--json", metavar="FILE", help="write the rows and the total as JSON")
    parser.set_defaults(run=run)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise CliError(f"--input-shape expects positive integers separated by commas, e.g. 28,8; got {text!r}") \
            from None
    if not shape or min(shape) < 1:
        raise CliError(f"--input-shape expects positive integers separated by commas, e.g. 28,8; got {text!r}")
    return shape


def run(args) -> int:
    if args.json:
        from .common import check_output_file

        check_output_file("--json", args.json)
    shape = _parse_shape(args.input_shape) if args.input_shape else None
    if args.mlp_features < 1:
        raise CliError(f"--mlp-features must be a positive integer, got {args.mlp_features}")
    from engine import Device, load, summary

    dev = Device(args.device or "auto")
    if args.checkpoint:
        model, _ = load(args.checkpoint, device=dev)
        title = f"{args.checkpoint}"
    else:
        from engine.profiler import random_batch
        from engine.recipes import build_model

        x, _ = random_batch(args.model, 1, mlp_features=args.mlp_features)
        model = build_model(args.model, dev, x)
        shape = shape or tuple(x.shape[1:])
        title = f"--model {args.model}"
    result = summary(model, shape)
    print(f"{title} on {dev!r}")
    print(result)
    if args.json:
        rows = [{"index": i, "layer": layer, "output_shape": list(out), "parameters": count}
                for i, layer, out, count in result.rows]
        write_json(args.json, {"model": title, "input_shape": list(result.input_shape), "layers": rows,
                               "total_parameters": result.total_parameters})
    return 0
