"""Exercise (chapter 2): LeakyReLU, y = x if x > 0 else slope * x, as a CUDA kernel and a CPU twin.

Grade it with:  python cli.py --device sim check --only leaky_relu   (the CUDA kernel, in the simulator)
                python cli.py check --only leaky_relu                (the CPU twin)
"""

from numba import cuda, float32, njit, prange  # noqa: F401


@cuda.jit
def leaky_relu_kernel(out, x, slope):
    """out, x: float32[::1]; slope: float32. Use a grid-stride loop so any grid covers any size."""
    raise NotImplementedError("write the kernel: see docs/tutorials/02-first-kernel.md")


@njit(parallel=True)
def leaky_relu_cpu(out, x, slope):
    """The same on the CPU, with prange."""
    raise NotImplementedError("write the CPU twin")
