"""SGD, Adagrad, RMSprop, Adam, AdamW: PyTorch's documented formulas, each one fused kernel per step."""

from __future__ import annotations

from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay (PyTorch's)."""

    state_names = ("momentum_buf",)
    kind = "sgd"

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay)

    def _update(self, k):
        k.sgd_step(self.flat.data, self.state["momentum_buf"], self.flat.grad, scalars=self.step_scalars,
                   **self.hyper)


class Adagrad(Optimizer):
    """Adagrad (PyTorch's formula, with learning-rate decay and weight decay)."""

    state_names = ("sum_sq",)
    kind = "adagrad"

    def __init__(self, params, lr=0.01, eps=1e-10, weight_decay=0.0, lr_decay=0.0):
        super().__init__(params, lr, eps=eps, weight_decay=weight_decay, lr_decay=lr_decay)

    def _update(self, k):
        k.adagrad_step(self.flat.data, self.state["sum_sq"], self.flat.grad, scalars=self.step_scalars, **self.hyper)


class RMSprop(Optimizer):
    """RMSprop (PyTorch's formula, with optional momentum and weight decay)."""

    state_names = ("square_avg", "momentum_buf")
    kind = "rmsprop"

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay)

    def _update(self, k):
        k.rmsprop_step(self.flat.data, self.state["square_avg"], self.state["momentum_buf"], self.flat.grad,
                       scalars=self.step_scalars, **self.hyper)


class Adam(Optimizer):
    """Adam with bias correction (PyTorch's formula; ``weight_decay`` adds to the gradient)."""

    state_names = ("exp_avg", "exp_avg_sq")
    kind = "adam"
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), got {betas!r}")
        super().__init__(params, lr, beta1=float(betas[0]), beta2=float(betas[1]), eps=eps,
                         weight_decay=weight_decay)

    def _update(self, k):
        k.adam_step(self.flat.data, self.state["exp_avg"], self.state["exp_avg_sq"], self.flat.grad,
                    scalars=self.step_scalars, decoupled_weight_decay=self.decoupled, **self.hyper)


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)
