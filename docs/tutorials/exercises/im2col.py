"""Exercise (chapter 5): im2col forward, as a CUDA kernel and a CPU twin.

x (N, C, H, W) -> cols (N*OH*OW, C*K*K) with OH = (H + 2*P - K) // S + 1 (likewise OW). Row r is the output
pixel (img, oh, ow) in row-major order; column q is the patch entry (ch, ki, kj) in row-major order, and holds
x[img, ch, oh*S - P + ki, ow*S - P + kj], or 0 where that falls in the padding.
Grade it with:  python cli.py --device sim check --only im2col   (the CUDA kernel, in the simulator)
                python cli.py check --only im2col                (the CPU twin)
"""

from numba import cuda, float32, njit, prange  # noqa: F401


@cuda.jit
def im2col_kernel(cols, x, k, stride, padding):
    """cols: float32[:, ::1]; x: float32[:, :, :, ::1]; k, stride, padding: int. One thread per element of
    cols in a grid-stride loop (the grader launches a grid smaller than cols), consecutive threads writing
    consecutive columns so the stores coalesce."""
    raise NotImplementedError("write the kernel: see docs/tutorials/05-cnns.md")


@njit(parallel=True)
def im2col_cpu(cols, x, k, stride, padding):
    """The same on the CPU, with prange over the rows of cols."""
    raise NotImplementedError("write the CPU twin")
