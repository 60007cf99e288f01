"""Batch normalization kernels on every backend against float64 references."""

import numpy as np
import pytest
from hypothesis import strategies as st
from support import BACKENDS, assert_close, for_all, kernels, poisoned, random_array, simulated, to_backend, to_host


def bn_case(backend):
    sim = simulated(backend)
    return st.fixed_dictionaries({
        "n": st.sampled_from([1, 2, 3] if sim else [1, 2, 8, 33]),
        "c": st.sampled_from([1, 3] if sim else [1, 3, 16, 65]),
        "h": st.sampled_from([1, 2, 5] if sim else [1, 3, 8, 14]),
        "w": st.sampled_from([2, 3] if sim else [2, 5, 14]),
        "shift": st.sampled_from([0.0, 5.0]),  # a large mean: the two-pass variance must not cancel
        "seed": st.integers(0, 2**16),
    }).filter(lambda c: c["n"] * c["h"] * c["w"] >= 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_train_eval_backward(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        shape = (c["n"], c["c"], c["h"], c["w"])
        C = c["c"]
        x = random_array(rng, shape) + np.float32(c["shift"])
        gamma, beta, dy = random_array(rng, (C,)), random_array(rng, (C,)), random_array(rng, shape)
        rm, rv = random_array(rng, (C,)), np.abs(random_array(rng, (C,))) + 0.5
        ref, k, B = kernels("numpy"), kernels(backend), (lambda a: to_backend(backend, a))
        y64, mean64, inv64 = np.empty(shape), np.empty(C), np.empty(C)
        rm64, rv64 = rm.astype(np.float64), rv.astype(np.float64)
        ref.batchnorm_forward_train(y64, mean64, inv64, rm64, rv64, x.astype(np.float64), gamma.astype(np.float64),
                                    beta.astype(np.float64), 0.1, 1e-5)
        y, mean, inv, RM, RV = poisoned(backend, shape), poisoned(backend, (C,)), poisoned(backend, (C,)), B(rm), B(rv)
        k.batchnorm_forward_train(y, mean, inv, RM, RV, B(x), B(gamma), B(beta), 0.1, 1e-5)
        assert_close(y, y64, 1e-4, 1e-4, "bn y")
        assert_close(mean, mean64, 1e-5, 1e-5, "bn mean")
        assert_close(inv, inv64, 1e-3, 1e-3, "bn invstd")
        assert_close(RM, rm64, 1e-5, 1e-5, "running mean")
        assert_close(RV, rv64, 1e-4, 1e-4, "running var")

        ye64 = np.empty(shape)
        ref.batchnorm_forward_eval(ye64, x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64),
                                   rm64, rv64, 1e-5)
        ye = poisoned(backend, shape)
        k.batchnorm_forward_eval(ye, B(x), B(gamma), B(beta), RM, RV, 1e-5)
        assert_close(ye, ye64, 1e-4, 1e-4, "bn eval y")

        dx64, dg64, db64 = np.empty(shape), np.empty(C), np.empty(C)
        ref.batchnorm_backward(dx64, dg64, db64, dy.astype(np.float64), x.astype(np.float64), mean64, inv64,
                               gamma.astype(np.float64))
        dx, dg, db = poisoned(backend, shape), poisoned(backend, (C,)), poisoned(backend, (C,))
        k.batchnorm_backward(dx, dg, db, B(dy), B(x), B(to_host(mean)), B(to_host(inv)), B(gamma))
        m = c["n"] * c["h"] * c["w"]
        assert_close(db, db64, 1e-4, 1e-5 * m, "dbeta")
        assert_close(dg, dg64, 1e-3, 1e-4 * m, "dgamma")
        assert_close(dx, dx64, 1e-3, 1e-3 * max(1.0, float(np.abs(inv64).max())), "bn dx")

    for_all(backend, bn_case(backend), check, sim_examples=3)


def test_batchnorm_needs_two_values_per_channel():
    x = np.zeros((1, 2, 1, 1), np.float32)
    c = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="more than one value per channel"):
        kernels("cpu").batchnorm_forward_train(np.zeros_like(x), c.copy(), c.copy(), c.copy(), c.copy(), x, c, c)
