"""Exercise (chapter 7): one Adam step as one fused elementwise pass, exactly as PyTorch documents
torch.optim.Adam (no weight decay, no AMSGrad), step t counted from 1:
    m = beta1*m + (1 - beta1)*g;   v = beta2*v + (1 - beta2)*g*g
    p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
Grade it with:  python cli.py check --only adam
"""

from numba import njit, prange  # noqa: F401


@njit(parallel=True)
def adam_step(params, m, v, grads, lr, beta1, beta2, eps, step):
    """params, m, v, grads: float32[::1] (m and v start at 0); lr, beta1, beta2, eps: float32; step: int >= 1.
    Updates params, m and v in place. The two bias corrections are the same for every parameter: compute
    them once, outside the loop."""
    raise NotImplementedError("write the update: see docs/tutorials/07-mlps-and-optimizers.md")
