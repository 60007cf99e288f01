#!/usr/bin/env python
"""Launch every GPU kernel of the kernel layer once, at awkward shapes (primes, tile +- 1), and check
each result against the float64 reference: the short program that compute-sanitizer's memcheck,
racecheck and synccheck watch in scripts/gpu_check.sh. Runs in the simulator too (slow: every thread in Python).

Coverage is taken from the launches themselves (``cuda_kernels.launch.track_launches``): every kernel registered
with ``@gpu_kernel`` must have been launched, and on a GPU every CUDA C kernel NVRTC builds (gemm_cuda_c.VERSIONS);
the simulator cannot run CUDA C, and says so. Exit status 1 if any result is wrong or any kernel was not launched.

    python3 scripts/launch_every_kernel.py            # on a GPU, or NUMBA_ENABLE_CUDASIM=1 in the simulator
    python3 scripts/launch_every_kernel.py --dry-run  # imports, lists the kernels a run must launch
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from cuda_kernels import KERNELS, SIMULATOR, get_backend  # noqa: E402
from cuda_kernels import gemm as G  # noqa: E402
from cuda_kernels import gemm_cuda_c as CC  # noqa: E402
from cuda_kernels import launch as LAUNCH  # noqa: E402
from cuda_kernels import reductions as R  # noqa: E402
from cuda_kernels.ceilings import copy_ceiling_kernel, fma_ceiling_kernel  # noqa: E402

GPU, REF = get_backend("cuda"), get_backend("numpy")
rng = np.random.default_rng(7)
failures: list[str] = []


def dev(a):
    from numba import cuda

    return cuda.to_device(np.ascontiguousarray(a))


def host(a):
    return a.copy_to_host()


def check(name, got, expected, tol=1e-4):
    got = np.asarray(got, np.float64)
    err = np.abs(got - expected).max() / max(1.0, np.abs(expected).max())
    status = "ok" if err <= tol else "WRONG"
    print(f"{status:5s} {name:40s} max rel err {err:.1e}")
    if err > tol:
        failures.append(name)


def r(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def cuda_c_unsupported(version: str) -> str | None:
    """Why a CUDA C version cannot run here: the simulator, or a GPU older than the version needs."""
    if SIMULATOR:
        return "skipped: CUDA C needs a real GPU (NVRTC), the simulator runs Python only"
    from numba import cuda

    why = CC.unsupported(version, tuple(cuda.get_current_device().compute_capability))
    return f"skipped: {why}" if why else None


def expected_kernels() -> set[str]:
    """Every kernel a run must launch: the registry, and the CUDA C kernels that can run here (a real GPU, new
    enough for each)."""
    cuda_c = {f"cuda_c:{name}" for version, (name, _, _) in CC.VERSIONS.items() if not cuda_c_unsupported(version)}
    return set(KERNELS) | cuda_c


def dry_run() -> int:
    names = sorted(expected_kernels())
    print(f"would launch and check {len(names)} kernels: {', '.join(names)}")
    for version in CC.VERSIONS:
        print(f"NVRTC kernel {version}: {cuda_c_unsupported(version) or 'launched on this GPU'}")
    return 0


def main() -> int:
    from numba import cuda

    if "--dry-run" in sys.argv[1:]:
        return dry_run()
    launched = LAUNCH.track_launches()

    # GEMM: every version, transposes, epilogue, a shape straddling the 64x64 and 16x16 tiles
    m, n, k = 67, 65, 17
    a, b, bias, c0 = r(k, m), r(n, k), r(n), r(m, n)
    for version in [v for v in G.CUDA_VERSIONS if v != "split_k"]:  # split-K below, with a K that splits
        out = dev(c0)
        GPU.gemm(out, dev(a), dev(b), 0.5, 1.0, True, True, dev(bias), "relu", version=version)
        ref = c0.astype(np.float64).copy()
        REF.gemm(ref, a.astype(np.float64), b.astype(np.float64), 0.5, 1.0, True, True, bias.astype(np.float64),
                 "relu")
        check(f"gemm {version} 67x65x17", host(out), ref)
    # split-K: K long enough for several slices, and not a multiple of the slice (the last one is short)
    m, n, k = 7, 66, 2 * G.SPLIT_K_MIN_SLICE + 37
    a, b, bias, c0 = r(k, m), r(n, k), r(n), r(m, n)
    out = dev(c0)
    GPU.gemm(out, dev(a), dev(b), 0.5, 1.0, True, True, dev(bias), "relu", version="split_k")
    ref = c0.astype(np.float64).copy()
    REF.gemm(ref, a.astype(np.float64), b.astype(np.float64), 0.5, 1.0, True, True, bias.astype(np.float64), "relu")
    check(f"gemm split_k {m}x{n}x{k} ({G.split_k_slices(m, n, k)} slices)", host(out), ref)

    x = r(3, 37)
    for act in ("relu", "tanh", "sigmoid"):
        y = dev(np.empty_like(x))
        GPU.activation_forward(y, dev(x), act)
        ref = np.empty(x.shape)
        REF.activation_forward(ref, x.astype(np.float64), act)
        check(f"activation_forward {act}", host(y), ref)
        dx = dev(np.empty_like(x))
        GPU.activation_backward(dx, dev(x), y, act)
        ref_dx = np.empty(x.shape)
        REF.activation_backward(ref_dx, x.astype(np.float64), host(y).astype(np.float64), act)
        check(f"activation_backward {act}", host(dx), ref_dx)

    out = dev(np.empty_like(x))
    GPU.fill(out, 3.0)
    check("fill", host(out), np.full(x.shape, 3.0))
    GPU.scale(out, dev(x), 2.0)
    check("scale (axpby)", host(out), 2.0 * x)
    yb = dev(x)
    GPU.axpy(yb, dev(x), 1.0)
    check("axpy (axpby)", host(yb), 2.0 * x)
    GPU.add(out, dev(x), dev(x))
    check("add", host(out), 2.0 * x)
    GPU.multiply(out, dev(x), dev(x))
    check("multiply", host(out), x.astype(np.float64) ** 2)
    bias = r(37)
    GPU.bias_add(out, dev(x), dev(bias))
    check("bias_add", host(out), x + bias)
    mask = dev(np.empty_like(x))
    GPU.dropout_forward(out, mask, dev(x), 0.3, 11)
    from cuda_kernels.elementwise import dropout_mask_reference

    check("dropout_forward", host(out), x * dropout_mask_reference(x.shape, 0.3, 11))
    s = r(5, 3, 7)
    swapped = dev(np.empty((3, 5, 7), np.float32))
    GPU.swap_leading_axes(swapped, dev(s))
    check("swap_leading_axes", host(swapped), s.transpose(1, 0, 2))

    # reductions and losses
    logits, labels = r(37, 10) * 5, rng.integers(0, 10, 37).astype(np.int32)
    loss, rows, probs = dev(np.empty(1, np.float32)), dev(np.empty(37, np.float32)), dev(np.empty((37, 10), np.float32))
    GPU.softmax_cross_entropy_forward(loss, rows, probs, dev(logits), dev(labels))
    l64, r64, p64 = np.empty(1), np.empty(37), np.empty((37, 10))
    REF.softmax_cross_entropy_forward(l64, r64, p64, logits.astype(np.float64), labels)
    check("softmax_cross_entropy_forward", host(loss), l64)
    d = dev(np.empty((37, 10), np.float32))
    GPU.softmax_cross_entropy_backward(d, probs, dev(labels), 1 / 37)
    d64 = np.empty((37, 10))
    REF.softmax_cross_entropy_backward(d64, host(probs).astype(np.float64), labels, 1 / 37)
    check("softmax_cross_entropy_backward", host(d), d64)
    sums = dev(np.empty(10, np.float32))
    GPU.column_sums(sums, dev(logits))
    check("column_sums", host(sums), logits.astype(np.float64).sum(0))
    tall = r(2 * R.ROW_CHUNK + 5, 6)  # a conv bias gradient's shape: the two-pass path, a short last chunk
    sums6 = dev(np.ones(6, np.float32))
    GPU.column_sums(sums6, dev(tall), accumulate=True)
    check("column_sums (two passes, accumulate)", host(sums6), 1 + tall.astype(np.float64).sum(0))
    arg, count = dev(np.empty(37, np.int32)), dev(np.zeros(1, np.int32))
    GPU.argmax_rows(arg, dev(logits))
    GPU.count_equal(count, arg, dev(labels))
    check("argmax_rows + count_equal", host(count), [np.count_nonzero(logits.argmax(1) == labels)])
    target = r(37, 10)
    sq, dpred = dev(np.empty((37, 10), np.float32)), dev(np.empty((37, 10), np.float32))
    GPU.mse_forward(loss, sq, dev(logits), dev(target))
    check("mse_forward", host(loss), [((logits.astype(np.float64) - target) ** 2).mean()])
    GPU.mse_backward(dpred, dev(logits), dev(target))
    check("mse_backward", host(dpred), 2 * (logits.astype(np.float64) - target) / logits.size)
    wide, wide_labels = r(5, 67) * 5, rng.integers(0, 67, 5).astype(np.int32)  # a warp per row: 67 = 2 warps + 3
    wloss, wrows = dev(np.empty(1, np.float32)), dev(np.empty(5, np.float32))
    wprobs = dev(np.empty((5, 67), np.float32))
    GPU.softmax_cross_entropy_forward(wloss, wrows, wprobs, dev(wide), dev(wide_labels), version="warp_per_row")
    l64, r64, p64 = np.empty(1), np.empty(5), np.empty((5, 67))
    REF.softmax_cross_entropy_forward(l64, r64, p64, wide.astype(np.float64), wide_labels)
    check("softmax_cross_entropy_forward (warp per row)", host(wprobs), p64)
    for version in R.SUM_VERSIONS:
        GPU.scaled_sum(loss, dev(logits.ravel()), 0.5, version=version)
        check(f"scaled_sum ({version})", host(loss), [0.5 * logits.astype(np.float64).sum()])

    # convolution pieces and max-pooling (overlapping windows)
    xi, weight, bias = r(2, 3, 11, 13), r(5, 3, 3, 3), r(5)
    oh, ow = 6, 7  # stride 2, padding 1
    y, cols, rws = dev(np.empty((2, 5, oh, ow), np.float32)), dev(np.empty((2 * oh * ow, 27), np.float32)), \
        dev(np.empty((2 * oh * ow, 5), np.float32))
    GPU.conv2d_forward(y, cols, rws, dev(xi), dev(weight), dev(bias), 2, 1)
    y64, c64, r64 = np.empty((2, 5, oh, ow)), np.empty((2 * oh * ow, 27)), np.empty((2 * oh * ow, 5))
    REF.conv2d_forward(y64, c64, r64, xi.astype(np.float64), weight.astype(np.float64), bias.astype(np.float64), 2, 1)
    check("conv2d_forward (im2col, gemm, rows_to_nchw)", host(y), y64)
    dy = r(2, 5, oh, ow)
    dx, dw, db = dev(np.empty_like(xi)), dev(np.empty_like(weight)), dev(np.empty(5, np.float32))
    GPU.conv2d_backward(dx, dw, db, dev(np.empty((2 * oh * ow, 27), np.float32)), dev(np.empty((2 * oh * ow, 5),
                        np.float32)), dev(dy), cols, dev(weight), 2, 1)
    dx64, dw64, db64 = np.empty(xi.shape), np.empty(weight.shape), np.empty(5)
    REF.conv2d_backward(dx64, dw64, db64, np.empty(c64.shape), np.empty(r64.shape), dy.astype(np.float64), c64,
                        weight.astype(np.float64), 2, 1)
    check("conv2d_backward dx (col2im)", host(dx), dx64)
    check("conv2d_backward dw (nchw_to_rows, gemm)", host(dw), dw64)
    yi = dev(np.empty((2, 5, oh, ow), np.float32))
    GPU.conv2d_implicit_gemm_forward(yi, dev(xi), dev(weight), dev(bias), 2, 1)
    check("conv2d_implicit_gemm_forward", host(yi), y64)
    dxi, dwi, dbi = dev(np.empty_like(xi)), dev(np.empty_like(weight)), dev(np.empty(5, np.float32))
    GPU.conv2d_implicit_gemm_backward(dxi, dwi, dbi, dev(np.empty((3, 5, 28), np.float32)), dev(dy), dev(xi),
                                      dev(weight), 2, 1)
    check("conv2d_implicit_gemm_backward dx", host(dxi), dx64)
    check("conv2d_implicit_gemm_backward dw", host(dwi), dw64)
    check("conv2d_implicit_gemm_backward db", host(dbi), dy.astype(np.float64).sum(axis=(0, 2, 3)))
    xp = r(2, 3, 7, 9)
    yp, argp = dev(np.empty((2, 3, 3, 4), np.float32)), dev(np.empty((2, 3, 3, 4), np.int32))
    GPU.maxpool_forward(yp, argp, dev(xp), 3, 2)
    y64, a64 = np.empty((2, 3, 3, 4)), np.empty((2, 3, 3, 4), np.int32)
    REF.maxpool_forward(y64, a64, xp.astype(np.float64), 3, 2)
    check("maxpool_forward 3x3 stride 2", host(yp), y64)
    dyp, dxp = r(2, 3, 3, 4), dev(np.empty_like(xp))
    GPU.maxpool_backward(dxp, dev(dyp), argp, 3, 2)
    dx64 = np.empty(xp.shape)
    REF.maxpool_backward(dx64, dyp.astype(np.float64), a64, 3, 2)
    check("maxpool_backward (overlapping)", host(dxp), dx64)

    # RNN step, batchnorm, optimizers
    h = r(5, 7)
    dpre = dev(np.empty_like(h))
    GPU.rnn_tanh_backward(dpre, dev(h), dev(h), dev(np.tanh(h)))
    check("rnn_tanh_backward", host(dpre), 2 * h.astype(np.float64) * (1 - np.tanh(h.astype(np.float64)) ** 2), 1e-3)
    xb, g, be = r(3, 5, 4, 3), r(5), r(5)
    yb2, mean, inv, rm, rv = (dev(np.empty_like(xb)), dev(np.empty(5, np.float32)), dev(np.empty(5, np.float32)),
                              dev(np.zeros(5, np.float32)), dev(np.ones(5, np.float32)))
    GPU.batchnorm_forward_train(yb2, mean, inv, rm, rv, dev(xb), dev(g), dev(be))
    ref = np.empty(xb.shape)
    REF.batchnorm_forward_train(ref, np.empty(5), np.empty(5), np.zeros(5), np.ones(5), xb.astype(np.float64),
                                g.astype(np.float64), be.astype(np.float64))
    check("batchnorm_forward_train", host(yb2), ref, 1e-3)
    mean64, inv64, rm64, rv64 = np.empty(5), np.empty(5), np.zeros(5), np.ones(5)
    REF.batchnorm_forward_train(np.empty(xb.shape), mean64, inv64, rm64, rv64, xb.astype(np.float64),
                                g.astype(np.float64), be.astype(np.float64))
    check("batchnorm_forward_train running stats", np.concatenate([host(rm), host(rv)]),
          np.concatenate([rm64, rv64]), 1e-3)
    GPU.batchnorm_forward_eval(yb2, dev(xb), dev(g), dev(be), rm, rv)
    ref = np.empty(xb.shape)
    REF.batchnorm_forward_eval(ref, xb.astype(np.float64), g.astype(np.float64), be.astype(np.float64), rm64, rv64)
    check("batchnorm_forward_eval", host(yb2), ref, 1e-3)
    dyb = r(*xb.shape)
    dxb, dgb, dbb = dev(np.empty_like(xb)), dev(np.empty(5, np.float32)), dev(np.empty(5, np.float32))
    GPU.batchnorm_backward(dxb, dgb, dbb, dev(dyb), dev(xb), mean, inv, dev(g))
    dx64, dg64, db64 = np.empty(xb.shape), np.empty(5), np.empty(5)
    REF.batchnorm_backward(dx64, dg64, db64, dyb.astype(np.float64), xb.astype(np.float64), mean64, inv64,
                           g.astype(np.float64))
    check("batchnorm_backward dx", host(dxb), dx64, 1e-3)
    check("batchnorm_backward dgamma, dbeta", np.concatenate([host(dgb), host(dbb)]), np.concatenate([dg64, db64]),
          1e-3)
    xl, gl, bl, dyl = r(5, 67), r(67), r(67), r(5, 67)  # 67: no multiple of a block (32 simulated, 256)
    yl, mean_l, rstd_l = dev(np.empty_like(xl)), dev(np.empty(5, np.float32)), dev(np.empty(5, np.float32))
    GPU.layernorm_forward(yl, mean_l, rstd_l, dev(xl), dev(gl), dev(bl))
    ref, ref_mean, ref_rstd = np.empty(xl.shape), np.empty(5), np.empty(5)
    REF.layernorm_forward(ref, ref_mean, ref_rstd, xl.astype(np.float64), gl.astype(np.float64), bl.astype(np.float64))
    check("layernorm_forward", host(yl), ref, 1e-3)
    dxl, dgl, dbl = dev(np.empty_like(xl)), dev(np.empty(67, np.float32)), dev(np.empty(67, np.float32))
    GPU.layernorm_backward(dxl, dgl, dbl, dev(dyl), dev(xl), mean_l, rstd_l, dev(gl))
    ref_dx, ref_dg, ref_db = np.empty(xl.shape), np.empty(67), np.empty(67)
    REF.layernorm_backward(ref_dx, ref_dg, ref_db, dyl.astype(np.float64), xl.astype(np.float64), ref_mean, ref_rstd,
                           gl.astype(np.float64))
    check("layernorm_backward dx", host(dxl), ref_dx, 1e-3)
    check("layernorm_backward dgamma", host(dgl), ref_dg, 1e-3)
    grads = r(3 * R.REDUCE_THREADS + 5)  # several blocks of partials, the last one short
    squared = dev(np.zeros(1, np.float32))
    GPU.sum_of_squares(squared, dev(grads))
    check("sum_of_squares", host(squared), np.dot(grads.astype(np.float64), grads), 1e-5)
    p, gr = r(1031), r(1031)
    for name, state in (("sgd_step", 1), ("adagrad_step", 1), ("rmsprop_step", 2), ("adam_step", 2)):
        buffers = [dev(np.zeros(1031, np.float32)) for _ in range(state)]
        ref_buffers = [np.zeros(1031) for _ in range(state)]
        P, p64 = dev(p), p.astype(np.float64)
        kwargs = {"momentum": 0.9} if name in ("sgd_step", "rmsprop_step") else {}
        getattr(GPU, name)(P, *buffers, dev(gr), 0.01, **kwargs)
        getattr(REF, name)(p64, *ref_buffers, gr.astype(np.float64), 0.01, **kwargs)
        check(name, host(P), p64)

    # embedding: repeated ids (the backward must add them up), both backward versions
    table, ids = r(11, 37), rng.integers(0, 11, 53).astype(np.int32)
    out, dout = dev(np.empty((53, 37), np.float32)), r(53, 37)
    GPU.embedding_forward(out, dev(table), dev(ids))
    check("embedding_forward", host(out), table.astype(np.float64)[ids])
    expected = np.zeros((11, 37))
    np.add.at(expected, ids, dout.astype(np.float64))
    for version in ("gather", "atomic"):
        dtable = dev(np.full((11, 37), np.nan, np.float32))
        GPU.embedding_backward(dtable, dev(dout), dev(ids), version=version)
        check(f"embedding_backward {version}", host(dtable), expected)
    # the LSTM and GRU cells: 5 rows of 37 hidden units (not a multiple of any block)
    rows, hidden = 5, 37
    for family in ("lstm", "gru"):
        if family == "lstm":
            pre, c_prev = r(rows, 4 * hidden), r(rows, hidden)
            outs = [np.empty((rows, hidden)), np.empty((rows, hidden)), np.empty((rows, 4 * hidden))]
            REF.lstm_cell_forward(*outs, pre.astype(np.float64), c_prev.astype(np.float64))
            got = [dev(np.empty(o.shape, np.float32)) for o in outs]
            GPU.lstm_cell_forward(*got, dev(pre), dev(c_prev))
            ins = [r(rows, hidden), r(rows, hidden), r(rows, hidden)]  # dh_out, dh_next, dc_next
            grads = [np.empty((rows, 4 * hidden)), np.empty((rows, hidden))]
            REF.lstm_cell_backward(*grads, *[i.astype(np.float64) for i in ins], outs[2], outs[1],
                                   c_prev.astype(np.float64))
            got_grads = [dev(np.empty(g.shape, np.float32)) for g in grads]
            GPU.lstm_cell_backward(*got_grads, *[dev(i) for i in ins], got[2], got[1], dev(c_prev))
        else:
            xproj, hproj, h_prev = r(rows, 3 * hidden), r(rows, 3 * hidden), r(rows, hidden)
            outs = [np.empty((rows, hidden)), np.empty((rows, 3 * hidden))]
            REF.gru_cell_forward(*outs, xproj.astype(np.float64), hproj.astype(np.float64), h_prev.astype(np.float64))
            got = [dev(np.empty(o.shape, np.float32)) for o in outs]
            GPU.gru_cell_forward(*got, dev(xproj), dev(hproj), dev(h_prev))
            ins = [r(rows, hidden), r(rows, hidden)]  # dh_out, dh_next
            grads = [np.empty((rows, 3 * hidden)), np.empty((rows, 3 * hidden)), np.empty((rows, hidden))]
            REF.gru_cell_backward(*grads, *[i.astype(np.float64) for i in ins], outs[1], hproj.astype(np.float64),
                                  h_prev.astype(np.float64))
            got_grads = [dev(np.empty(g.shape, np.float32)) for g in grads]
            GPU.gru_cell_backward(*got_grads, *[dev(i) for i in ins], got[1], dev(hproj), dev(h_prev))
        for i, (g, e) in enumerate(zip(got, outs)):
            check(f"{family}_cell_forward output {i}", host(g), e)
        for i, (g, e) in enumerate(zip(got_grads, grads)):
            check(f"{family}_cell_backward output {i}", host(g), e)

    # the ceiling kernels (launched, not checked: they measure)
    src = dev(r(4099))
    copy_ceiling_kernel[2, 64](dev(np.empty(4099, np.float32)), src)
    fma_ceiling_kernel[1, 32](dev(np.empty(32, np.float32)), np.float32(0.5), np.float32(0.1))

    # the CUDA C kernels NVRTC builds (gemm.cu): a real GPU only; TF32 keeps 10 mantissa bits, hence its tolerance
    m, n, k = 67, 65, 17
    a, b, bias, c0 = r(m, k), r(k, n), r(n), r(m, n)
    for version in CC.VERSIONS:
        why = cuda_c_unsupported(version)
        if why:
            print(f"skip  gemm {version}: {why}")
            continue
        out = dev(c0)
        GPU.gemm(out, dev(a), dev(b), 0.5, 1.0, False, False, dev(bias), "relu", version=version)
        ref = c0.astype(np.float64).copy()
        REF.gemm(ref, a.astype(np.float64), b.astype(np.float64), 0.5, 1.0, False, False, bias.astype(np.float64),
                 "relu")
        check(f"gemm {version} 67x65x17 (CUDA C)", host(out), ref, 1e-2 if "tf32" in version else 1e-4)
    cuda.synchronize()

    missing = sorted(expected_kernels() - launched)
    if missing:
        print(f"not launched: {missing}")
        failures.append("coverage")
    print(f"{len(launched)} kernels launched; {len(failures)} wrong: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
