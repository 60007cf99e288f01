"""Exercise (chapter 5): max-pooling backward, as a CUDA kernel (a gather) and a CPU twin.

The forward pass wrote y (N, C, OH, OW) and argmax (N, C, OH, OW, int32): the flat index ih*W + iw of each
window's maximum inside its (H, W) plane. Backward sends each dy to that input pixel; an input that won
several overlapping windows (stride < kernel) gets the sum, and every other input gets 0.
Grade it with:  python cli.py --device sim check --only maxpool_backward   (the CUDA kernel, in the simulator)
                python cli.py check --only maxpool_backward                (the CPU twin)
"""

from numba import cuda, float32, njit, prange  # noqa: F401


@cuda.jit
def maxpool_backward_kernel(dx, dy, argmax, k, stride):
    """dx: float32[:, :, :, ::1]; dy: float32[:, :, :, ::1]; argmax: int32[:, :, :, ::1]; k, stride: int.
    Gather, no atomics: one thread per input pixel (grid-stride) sums the dy of the windows that contain it
    and chose it. Which windows contain row ih? Those with oh*stride <= ih < oh*stride + k."""
    raise NotImplementedError("write the kernel: see docs/tutorials/05-cnns.md")


@njit(parallel=True)
def maxpool_backward_cpu(dx, dy, argmax, k, stride):
    """The same on the CPU: here a scatter is safe if each thread owns whole (image, channel) planes."""
    raise NotImplementedError("write the CPU twin")
