#!/usr/bin/env python
"""Does gradient clipping help the recurrent models? Each model's recipe (train's defaults: data, model,
Adam with the cosine schedule, epochs) trained twice per seed in one process, without clipping and with
``--clip-grad NORM``, same seed and data order; prints the gradient norms the unclipped run saw and the
outcome of both (test accuracy, or held-out bits per character for charlm). docs/benchmarks.md cites it.

    PYTHONPATH=. python scripts/clip_grad_study.py [--models rnn,lstm,gru,charlm] [--norm 1.0] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def train_once(name: str, clip: float | None, seed: int, epochs: int | None):
    import optim as O
    from engine import Device, clip_grad_norm, fit
    from engine.recipes import RECIPES, build_model, build_optimizer, build_training, load_data

    recipe = RECIPES[name]
    dev = Device("cpu")
    train, test = load_data(name, recipe.dataset)
    epochs = epochs or recipe.epochs
    model = build_model(name, dev, train.x)
    optimizer = build_optimizer("adam", model.parameters(), None, name)
    optimizer.schedule = O.cosine_lr(optimizer.base_lr, epochs * -(-len(train) // recipe.batch_size))
    loss_layer, eval_data, callbacks = build_training(name, model, test)
    norms, step = [], optimizer.step
    if clip is None:  # record the norm every update sees (a max_norm nothing reaches clips nothing)
        def measured_step():
            norms.append(clip_grad_norm(optimizer, 1e30))
            step()

        optimizer.step = measured_step
    start = time.perf_counter()
    history = fit(model, loss_layer, optimizer, train, epochs=epochs, batch_size=recipe.batch_size,
                  eval_data=eval_data, callbacks=callbacks, seed=seed, clip_grad=clip)
    final = history[-1]
    outcome = final.get("bits_per_char", final.get("test_accuracy"))
    return outcome, np.array(norms), time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="rnn,lstm,gru,charlm")
    parser.add_argument("--norm", type=float, default=1.0)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, help="instead of each recipe's")
    args = parser.parse_args()
    print(f"{'model':7s} {'seed':>4s} {'metric':>14s} {'no clip':>8s} {'clip ' + format(args.norm, 'g'):>8s} "
          f"{'norm p50':>8s} {'p99':>7s} {'max':>7s} {'clipped':>7s} {'s':>5s}")
    for name in args.models.split(","):
        metric = "bits/char (low)" if name == "charlm" else "test acc"
        for seed in map(int, args.seeds.split(",")):
            plain, norms, s1 = train_once(name, None, seed, args.epochs)
            clipped, _, s2 = train_once(name, args.norm, seed, args.epochs)
            print(f"{name:7s} {seed:4d} {metric:>14s} {plain:8.4f} {clipped:8.4f} {np.median(norms):8.3f} "
                  f"{np.percentile(norms, 99):7.3f} {norms.max():7.3f} {(norms > args.norm).mean():7.1%} "
                  f"{s1 + s2:5.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
