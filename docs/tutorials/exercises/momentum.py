"""Exercise (chapter 7): SGD with momentum as one fused elementwise pass, exactly as PyTorch documents
torch.optim.SGD (dampening 0, no Nesterov): buf = g on the first step, else momentum * buf + g;
p -= lr * buf. Grade it with:  python cli.py check --only momentum
"""

from numba import njit, prange  # noqa: F401


@njit(parallel=True)
def momentum_step(params, buf, grads, lr, momentum, first_step):
    """params, buf, grads: float32[::1]; lr, momentum: float32; first_step: bool. Updates in place."""
    raise NotImplementedError("write the update: see docs/tutorials/07-mlps-and-optimizers.md")
