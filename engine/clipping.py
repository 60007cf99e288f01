"""Gradient clipping: ``clip_grad_norm``, PyTorch's ``torch.nn.utils.clip_grad_norm_``.

On a model's flat gradient buffer (runtime/parameters.py) it is one reduction (``sum_of_squares``: the
squared L2 norm of every gradient at once) and, when the norm exceeds ``max_norm``, one ``scale`` of the
whole buffer by ``max_norm / (norm + 1e-6)``, PyTorch's coefficient. The norm is read back to the host
(one float: the caller gets it, as PyTorch's caller gets a tensor), so a clipped step does not run inside
a CUDA graph.
"""

from __future__ import annotations

import math

import numpy as np

from runtime.parameters import Parameter

_EPS = 1e-6  # PyTorch's: max_norm / (total_norm + 1e-6)
_SQUARED: dict = {}  # one (1,) result buffer per device kind, reused every step (no allocation per step)


def _gradient_buffers(target) -> tuple:
    """(device, [1-D gradient arrays]) for an optimizer, a model, or an iterable of Parameters: the flat
    gradient buffer when the parameters are exactly the ones living in it, else one array per parameter."""
    flat = getattr(target, "flat", None)  # an optimizer (or a model) that owns a flat buffer
    if flat is not None and hasattr(flat, "grad"):
        return flat.device, [flat.grad]
    params = target.parameters() if callable(getattr(target, "parameters", None)) else target
    if isinstance(params, Parameter):
        params = [params]
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"clip_grad_norm: expected an optimizer, a model or parameters, got "
                        f"{type(target).__name__}") from None
    if not params or not all(isinstance(p, Parameter) for p in params):
        raise TypeError("clip_grad_norm: expected an optimizer, a model or a non-empty list of Parameters")
    devices = {p.device.name for p in params}
    if len(devices) != 1:
        raise ValueError(f"clip_grad_norm: the parameters live on several devices: {sorted(devices)}")
    owner = params[0].flat_owner
    if owner is not None and all(p.flat_owner is owner for p in params) and len(params) == len(owner.params):
        return params[0].device, [owner.grad]
    return params[0].device, [p.grad.reshape(p.size) for p in params]


def clip_grad_norm(parameters_or_optimizer, max_norm: float, error_if_nonfinite: bool = False) -> float:
    """Scale the gradients so that their global L2 norm is at most ``max_norm``; returns the norm before
    clipping (PyTorch's ``clip_grad_norm_``, the 2-norm). Call it between ``backward`` and ``step``.

    ``parameters_or_optimizer``: an optimizer (its flat gradient buffer: one reduction, one scale), a model,
    or Parameters. Gradients whose norm is NaN or inf are left as they are and the norm is returned (the
    training loop then reports the diverged loss), or ``FloatingPointError`` with ``error_if_nonfinite``.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.floating, np.integer)) \
            or not math.isfinite(max_norm) or max_norm <= 0:
        raise ValueError(f"clip_grad_norm: max_norm must be a positive finite number, got {max_norm!r}")
    device, grads = _gradient_buffers(parameters_or_optimizer)
    k = device.kernels
    squared = _SQUARED.get(device.name)
    if squared is None or not device.owns(squared):
        squared = _SQUARED[device.name] = device.zeros((1,))
    total = 0.0
    for grad in grads:
        k.sum_of_squares(squared, grad)
        total += float(device.to_numpy(squared)[0])
    norm = math.sqrt(total) if total >= 0 else math.nan
    if not math.isfinite(norm):
        if error_if_nonfinite:
            raise FloatingPointError(f"clip_grad_norm: the gradients' norm is {norm} (a NaN or inf gradient)")
        return norm
    coefficient = max_norm / (norm + _EPS)
    if coefficient < 1.0:
        for grad in grads:
            k.scale(grad, grad, coefficient)
    return norm
