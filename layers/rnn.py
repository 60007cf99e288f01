"""RNN (Elman, tanh), batch-first: (N, T, input_size) -> all hidden states (N, T, hidden_size).

h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T + b), h_{-1} = 0; parameters weight_ih (H, I), weight_hh (H, H),
bias (H,) (PyTorch's single bias is b_ih + b_hh). Internally the sequence is time-major, so that every
x_t and h_t is a contiguous (N, features) matrix for the GEMMs; backward is BPTT over all T steps.
"""

from __future__ import annotations

import numpy as np

from runtime.device import Device

from .base import Layer, Parameter, positive_int, uniform_init


class RNN(Layer):
    """Elman RNN with tanh, batch-first: (batch, time, input_size) -> every hidden state (batch, time, hidden_size)."""

    def __init__(self, input_size: int, hidden_size: int, device: Device | str = "cpu", seed: int = 0):
        super().__init__()
        self.device = device if isinstance(device, Device) else Device(device)
        self.input_size = input_size = positive_int("RNN", "input_size", input_size)
        self.hidden_size = hidden_size = positive_int("RNN", "hidden_size", hidden_size)
        rng = np.random.default_rng(seed)
        h = hidden_size
        self.weight_ih = Parameter(uniform_init(rng, (h, input_size), h), self.device, "weight_ih")
        self.weight_hh = Parameter(uniform_init(rng, (h, h), h), self.device, "weight_hh")
        self.bias = Parameter(uniform_init(rng, (h,), h), self.device, "bias")

    def forward(self, x):
        dev = self.device_for(x)
        self._expect(x, 3, f"(batch, time, {self.input_size})", {2: self.input_size})
        n, t, _ = x.shape
        k = dev.kernels
        xs = self._buffer(dev, "xs", (t, n, self.input_size))  # time-major input, saved for backward
        hs = self._buffer(dev, "hs", (t, n, self.hidden_size))  # every hidden state, saved for backward
        h0 = self._buffer(dev, "h0", (n, self.hidden_size))
        k.fill(h0, 0.0)
        k.swap_leading_axes(xs, x)
        for step in range(t):
            k.rnn_step_forward(hs[step], xs[step], hs[step - 1] if step else h0, self.weight_ih.data,
                               self.weight_hh.data, self.bias.data)
        y = self._buffer(dev, "y", (n, t, self.hidden_size))
        k.swap_leading_axes(y, hs)
        return y

    def backward(self, dy):
        dev, k = self.device, self.device.kernels
        xs, hs, h0 = self._buffers["xs"], self._buffers["hs"], self._buffers["h0"]
        t, n, _ = hs.shape
        dys = self._buffer(dev, "dys", hs.shape)
        k.swap_leading_axes(dys, dy)
        dpre = self._buffer(dev, "dpre", (n, self.hidden_size))
        dh_a, dh_b = self._buffer(dev, "dh_a", (n, self.hidden_size)), self._buffer(dev, "dh_b", (n, self.hidden_size))
        k.fill(dh_a, 0.0)  # nothing flows back into the last step from the future
        dxs = self._buffer(dev, "dxs", xs.shape) if self.needs_input_grad else None
        dh_next, dh_prev = dh_a, dh_b
        for step in reversed(range(t)):
            k.rnn_step_backward(None if dxs is None else dxs[step], dh_prev, self.weight_ih.grad, self.weight_hh.grad,
                                self.bias.grad, dpre, dys[step], dh_next, hs[step], xs[step],
                                hs[step - 1] if step else h0, self.weight_ih.data, self.weight_hh.data,
                                accumulate=step != t - 1)
            dh_next, dh_prev = dh_prev, dh_next
        if dxs is None:
            return None
        dx = self._buffer(dev, "dx", (n, t, self.input_size))
        k.swap_leading_axes(dx, dxs)
        return dx

    def parameters(self):
        return [self.weight_ih, self.weight_hh, self.bias]

    def config(self):
        return {"input_size": self.input_size, "hidden_size": self.hidden_size}
