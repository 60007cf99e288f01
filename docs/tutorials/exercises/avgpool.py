"""Exercise (chapter 5): 2x2 average pooling (stride 2) forward and backward, as CPU prange kernels.

x (N, C, H, W) -> y (N, C, H // 2, W // 2); a trailing odd row or column is dropped, as PyTorch does.
Grade it with:  python cli.py check --only avgpool
"""

from numba import njit, prange  # noqa: F401


@njit(parallel=True)
def avgpool2_forward(y, x):
    raise NotImplementedError("write the forward pass: see docs/tutorials/05-cnns.md")


@njit(parallel=True)
def avgpool2_backward(dx, dy):
    """dx has x's shape; every element of a window gets a quarter of that window's dy (0 outside)."""
    raise NotImplementedError("write the backward pass")
