#!/usr/bin/env python
"""Write docs/api.md, the public API reference, from the docstrings (tests/test_api_reference.py keeps it
current and fails on a public class, function or method without one).

    python scripts/api_reference.py            rewrite docs/api.md
    python scripts/api_reference.py --check    exit 1 if docs/api.md is stale or a docstring is missing
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUTPUT = ROOT / "docs" / "api.md"

# (module, what it is, the public names in the order a reader meets them)
SECTIONS = [
    ("runtime", "Devices and parameters (floor 2).",
     ["Device", "DeviceUnavailable", "device_of", "host_device", "Parameter", "set_threads", "thread_settings"]),
    ("layers", "Layers with hand-written backward passes (floor 3), `import layers as L`.",
     ["Layer", "Dense", "Conv2D", "MaxPool2D", "ReLU", "Tanh", "Sigmoid", "Flatten", "FlattenTime", "LastTimeStep",
      "Dropout", "BatchNorm2D", "Embedding", "RNN", "LSTM", "GRU", "Loss", "SoftmaxCrossEntropy", "MSELoss",
      "LayerNorm", "check_finite"]),
    ("optim", "Optimizers and learning-rate schedules (floor 3), `import optim as O`.",
     ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "step_lr", "cosine_lr"]),
    ("engine", "Graphs, training, data, checkpoints, inference, PyTorch interop and gradient checks (floor 4).",
     ["Sequential", "Graph", "Add", "fit", "evaluate", "CapturedStep", "save", "load", "load_classifier", "predict",
      "load_state_dict", "gradcheck", "load_digits", "load_mnist", "read_idx", "batches",
      "state_dict", "clip_grad_norm", "summary", "load_npz"]),
    ("engine.outputs", "One rule for every file tilegrad writes: kinds, folders, one writer per checkpoint, atomic "
     "writes.", ["OutputError", "check_target", "check_folder", "check_suffix", "identify", "acquire", "release",
                 "writing", "check_unlocked", "write_atomic", "remove_stale_temps", "free_name"]),
    ("engine.models", "The course's models.",
     ["mlp", "lenet", "rnn_classifier", "lstm_classifier", "gru_classifier", "char_lm"]),
    ("engine.data", "Bundled text for character models (the digits and MNIST loaders are above).",
     ["read_text", "encode", "decode", "text_windows", "load_text"]),
    ("engine.charlm", "Character-level language models: the per-character loss, bits per character, sampling.",
     ["SequenceCrossEntropy", "HeldOutBitsPerChar", "evaluate_text", "sample", "char_lm_parts"]),
    ("cuda_kernels", "The kernel layer (floor 1): one backend object per device; every op has the same name and "
     "signature on every backend (`device.kernels.<op>`).", ["get_backend", "all_ops", "single_backend_ops"]),
]


def public_methods(cls) -> list[tuple[str, object]]:
    """The public methods and properties a class defines itself (inherited ones are documented on their base)."""
    members = []
    for name, value in vars(cls).items():
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(value, property) or inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod)):
            members.append((name, value))
    return members


def signature(obj, name: str) -> str:
    function = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    if isinstance(obj, property):
        return name
    try:
        sig = inspect.signature(function)
    except (TypeError, ValueError):
        return f"{name}(...)"
    params = [p for p in sig.parameters.values() if p.name != "self"]
    return f"{name}({', '.join(str(p.replace(annotation=inspect.Parameter.empty)) for p in params)})"


def docstring(obj, owner=None, name: str = "") -> str:
    """The object's docstring; a method that overrides a documented one inherits its text (the protocol's)."""
    function = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    if not function.__doc__ and owner is not None:
        for base in owner.__mro__[1:]:
            inherited = vars(base).get(name)
            if inherited is not None and docstring(inherited):
                return docstring(inherited)
    return inspect.cleandoc(function.__doc__ or "")


def collect():
    """(markdown text, names of public objects without a docstring)."""
    lines = ["# API reference", "",
             "Generated from the docstrings by `python scripts/api_reference.py`; `tests/test_api_reference.py` "
             "fails when it is stale. The floors are explained in [architecture.md](architecture.md).", ""]
    missing = []
    for module_name, about, names in SECTIONS:
        module = importlib.import_module(module_name)
        lines += [f"## `{module_name}`", "", about, ""]
        for name in names:
            obj = getattr(module, name)
            qualified = f"{module_name}.{name}"
            if inspect.isclass(obj):
                init = vars(obj).get("__init__")
                head = signature(init, name) if init is not None else name
                lines += [f"### class `{head}`", ""]
                text = docstring(obj) if obj.__doc__ else ""
                if not text or text == inspect.cleandoc(getattr(obj.__mro__[1], "__doc__", "") or ""):
                    missing.append(qualified)
                lines += [text, ""] if text else []
                for method_name, method in public_methods(obj):
                    if method_name == "__init__":
                        continue
                    text = docstring(method, obj, method_name)
                    if not text:
                        missing.append(f"{qualified}.{method_name}")
                    kind = "property" if isinstance(method, property) else "method"
                    lines += [f"- `{signature(method, method_name)}` ({kind}): " + (text.split("\n\n")[0].replace(
                        "\n", " ") if text else "")]
                lines += [""] if public_methods(obj) else []
            else:
                lines += [f"### `{signature(obj, name)}`", ""]
                text = docstring(obj)
                if not text:
                    missing.append(qualified)
                lines += [text, ""] if text else []
    return "\n".join(lines).rstrip() + "\n", missing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is stale or a docstring is missing")
    args = parser.parse_args(argv)
    text, missing = collect()
    if missing:
        print("public names without a docstring: " + ", ".join(missing), file=sys.stderr)
    if args.check:
        stale = not OUTPUT.exists() or OUTPUT.read_text() != text
        if stale:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run python scripts/api_reference.py", file=sys.stderr)
        return 1 if stale or missing else 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
