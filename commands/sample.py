"""``python cli.py sample``: text from a character language model that ``train --model charlm`` saved."""

from __future__ import annotations

from .common import CliError, add_device_option, check_finite

MAX_LENGTH = 100_000  # characters one run generates: one recurrent step each, so a bound a user can wait for


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample", help="generate text with a character language model (train --model charlm --checkpoint F)",
        description="Load a character language model's checkpoint and generate text one character at a time, "
                    "each drawn from the softmax of the model's logits divided by --temperature, the recurrent "
                    "state carried from one character to the next. Prints the prime, then the new text.")
    parser.add_argument("--checkpoint", metavar="FILE", required=True,
                        help="a checkpoint of `train --model charlm` (or of engine.models.char_lm, saved)")
    parser.add_argument("--length", type=int, default=300, metavar="N",
                        help=f"characters to generate, 0 to {MAX_LENGTH:,} (default 300)")
    parser.add_argument("--temperature", type=float, default=0.8, metavar="T",
                        help="a finite number > 0: lower repeats the likeliest spellings, higher invents more "
                             "(default 0.8)")
    parser.add_argument("--prime", default="", metavar="TEXT",
                        help="text the model reads first and continues (default: a line start)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed, >= 0: same seed, same text (default 0)")
    add_device_option(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    if not Path(args.checkpoint).is_file():
        raise CliError(f"--checkpoint {args.checkpoint}: no such file")
    check_finite("--length", args.length, minimum=0, maximum=MAX_LENGTH)
    check_finite("--temperature", args.temperature, above=0)
    check_finite("--seed", args.seed, minimum=0)

    from engine import Device, load
    from engine.charlm import char_lm_parts, sample

    model, _ = load(args.checkpoint, device=Device(args.device or "auto"))
    try:
        char_lm_parts(model)
    except ValueError as exc:
        raise CliError(f"--checkpoint {args.checkpoint}: {exc}; `train --model charlm --checkpoint F` makes one") \
            from None
    text = sample(model, args.length, args.temperature, args.prime, args.seed)
    print(args.prime + text)
    return 0
