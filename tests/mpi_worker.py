"""Run under ``mpiexec -n N`` by tests/test_distributed.py and tests/test_overlap.py (or alone, as the
one-process baseline).

    python tests/mpi_worker.py MODE OUT [ALLREDUCE [BUCKET_MB [DEVICE]]]

MODE: train (3 epochs of a small MLP on 500 digits), fail (rank 1 raises in epoch 2), disagree-model
(rank 1 builds a wider MLP), disagree-data (rank 1 trains on fewer samples), short (2 steps, for the
simulator). Each rank writes its final parameters to OUT.rank<r>.npy; rank 0 the history to OUT.json.
"""

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


def main(mode: str, out: str, allreduce: str = "overlap", bucket_mb: str = "1.0", device: str = "cpu") -> None:
    world = get_world()
    if device == "cuda":
        world.bind_gpu()  # local rank r takes GPU r mod the GPUs (none in the simulator)
    train, test = load_digits("flat")
    hidden = 48 if mode == "disagree-model" and world.rank == 1 else 32
    samples = 400 if mode == "disagree-data" and world.rank == 1 else 500
    epochs, batch_size = 3, 40
    if mode == "short":  # two steps of a tiny model: the CUDA simulator runs every GPU thread in Python
        hidden, samples, epochs, batch_size, test = 8, 32, 1, 16, None
    # different inits on each rank: the broadcast fixes them
    model = mlp(Device(device), in_features=64, hidden=hidden, seed=world.rank)
    opt = O.SGD(model.parameters(), lr=0.05, momentum=0.9)
    callbacks = []
    if mode == "fail":
        def explode(event, info):
            if world.rank == 1 and event == "batch" and info["epoch"] == 1 and info["step"] == 2:
                raise RuntimeError("simulated failure on rank 1")
        callbacks.append(explode)
    try:
        history = fit(model, L.SoftmaxCrossEntropy(), opt, train.head(samples), epochs=epochs, batch_size=batch_size,
                      seed=5, eval_data=test, callbacks=callbacks,
                      checkpoint=out + ".ckpt.npz" if mode == "fail" else None,
                      allreduce=allreduce, bucket_mb=float(bucket_mb))
    except (RuntimeError, ValueError) as exc:
        from commands.common import report_failure

        report_failure(exc)  # under MPI: said once, and every rank stops
        sys.exit(1)
    params = np.concatenate([p.numpy().ravel() for p in model.parameters()])
    np.save(f"{out}.rank{world.rank}.npy", params)
    if world.is_root:
        Path(out + ".json").write_text(json.dumps(history))
        Path(out + ".transport.txt").write_text(f"{world.transport(model.device)}\n{world.cuda_aware()} "
                                                f"({world.cuda_aware_how})\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
