"""Run under ``mpiexec -n N`` by tests/test_distributed.py (or alone, as the one-process baseline)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import layers as L  # noqa: E402
import optim as O  # noqa: E402
from engine import Device, fit, load_digits  # noqa: E402
from engine.distributed import get_world  # noqa: E402
from engine.models import mlp  # noqa: E402


def main(mode: str, out: str) -> None:
    world = get_world()
    train, test = load_digits("flat")
    model = mlp(Device("cpu"), in_features=64, hidden=32, seed=world.rank)  # different inits: the broadcast fixes it
    opt = O.SGD(model.parameters(), lr=0.05, momentum=0.9)
    callbacks = []
    if mode == "fail":
        def explode(event, info):
            if world.rank == 1 and event == "batch" and info["epoch"] == 1 and info["step"] == 2:
                raise RuntimeError("simulated failure on rank 1")
        callbacks.append(explode)
    try:
        history = fit(model, L.SoftmaxCrossEntropy(), opt, train.head(500), epochs=3, batch_size=40, seed=5,
                      eval_data=test, callbacks=callbacks, checkpoint=out + ".ckpt.npz" if mode == "fail" else None)
    except RuntimeError as exc:
        import cli

        cli._fail(exc)
    params = np.concatenate([p.numpy().ravel() for p in model.parameters()])
    np.save(f"{out}.rank{world.rank}.npy", params)
    if world.is_root:
        Path(out + ".json").write_text(json.dumps(history))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
