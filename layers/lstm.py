"""LSTM, batch-first, PyTorch's conventions: (N, T, input_size) -> all hidden states (N, T, hidden_size).

Gates in PyTorch's order (i, f, g, o), each a block of hidden_size rows of the parameters:
    [i, f, g, o] = [sigmoid, sigmoid, tanh, sigmoid](x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
    c_t = f * c_{t-1} + i * g        h_t = o * tanh(c_t)
weight_ih (4H, I), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,): a ``torch.nn.LSTM(I, H, batch_first=True)``'s
``weight_ih_l0`` etc. load as they are (``layer.weight_ih.load(t.weight_ih_l0.detach().numpy())``).

Internally time-major, so every x_t, h_t, c_t is a contiguous (N, features) matrix. Forward: one GEMM projects
the inputs of all T steps at once, then ``lstm_sequence_forward`` runs the steps: per step one GEMM adds
h_{t-1} W_hh^T + b_hh and one fused kernel (``lstm_cell_forward``) computes the gates and the new state.
Backward (BPTT): ``lstm_sequence_backward``, per step one fused kernel (``lstm_cell_backward``) and one GEMM for
dh_{t-1}; the weight gradients, bias gradients and dx are then one GEMM (or column sum) each over all T steps.
(On the CPU a small recurrence runs as one compiled call; on a GPU it is the same launches a step as before.)
"""

from __future__ import annotations

import numpy as np

from runtime.device import Device

from .base import Layer, Parameter, positive_int, uniform_init

GATES = 4


def load_initial_state(layer, dev: Device, out, value, name: str) -> None:
    """Copy the initial state ``value`` ((batch, hidden_size) on the layer's device) into ``out``, or zeros
    when it is None; one clear error naming the argument otherwise."""
    owner = f"{type(layer).__name__}.forward"
    if value is None:
        dev.kernels.fill(out, 0.0)
        return
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise TypeError(f"{owner}: expected {name} as an array on {dev!r}, got {type(value).__name__}")
    dev.check_owns(f"{owner} ({name})", value)
    if tuple(value.shape) != tuple(out.shape):
        raise ValueError(f"{owner}: expected {name} of shape {tuple(out.shape)} (batch, hidden_size), "
                         f"got {tuple(value.shape)}")
    if np.dtype(value.dtype) != np.dtype(out.dtype):
        raise TypeError(f"{owner}: expected {name} of dtype {np.dtype(out.dtype).name} (the device's), "
                        f"got {np.dtype(value.dtype).name}")
    dev.kernels.scale(out, value, 1.0)


class GatedRecurrent(Layer):
    """What LSTM and GRU share: PyTorch's parameters ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``
    and ``bias_hh`` (G*H,) for G = ``gates`` gates, initialized as PyTorch does, U(-1/sqrt(H), 1/sqrt(H))."""

    gates = 0

    def __init__(self, input_size: int, hidden_size: int, device: Device | str = "cpu", seed: int = 0):
        super().__init__()
        name = type(self).__name__
        self.device = device if isinstance(device, Device) else Device(device)
        self.input_size = input_size = positive_int(name, "input_size", input_size)
        self.hidden_size = h = positive_int(name, "hidden_size", hidden_size)
        rng, g = np.random.default_rng(seed), self.gates * h
        self.weight_ih = Parameter(uniform_init(rng, (g, input_size), h), self.device, "weight_ih")
        self.weight_hh = Parameter(uniform_init(rng, (g, h), h), self.device, "weight_hh")
        self.bias_ih = Parameter(uniform_init(rng, (g,), h), self.device, "bias_ih")
        self.bias_hh = Parameter(uniform_init(rng, (g,), h), self.device, "bias_hh")

    def parameters(self):
        return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]

    def config(self):
        return {"input_size": self.input_size, "hidden_size": self.hidden_size}


class LSTM(GatedRecurrent):
    """LSTM, batch-first: (batch, time, input_size) -> every hidden state (batch, time, hidden_size);
    PyTorch's ``nn.LSTM(input_size, hidden_size, batch_first=True)`` with one layer.

    Parameters in PyTorch's order and gate order (i, f, g, o), initialized as PyTorch does,
    U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), from ``seed``. Initial states are (batch, hidden_size)
    (PyTorch's have a leading num_layers axis of 1).
    """

    gates = GATES

    def __init__(self, input_size: int, hidden_size: int, device: Device | str = "cpu", seed: int = 0):
        super().__init__(input_size, hidden_size, device, seed)
        self._given = (False, False)  # whether the last forward got h0, c0
        self._initial_grads = None

    def forward(self, x, h0=None, c0=None):
        """Every hidden state (batch, time, hidden_size) for ``x`` (batch, time, input_size), starting from
        ``h0`` and ``c0`` ((batch, hidden_size) each; zeros when None). The final states are ``last_state``."""
        dev = self.device_for(x)
        self._expect(x, 3, f"(batch, time, {self.input_size})", {2: self.input_size})
        n, t, i_size = x.shape
        hid, k = self.hidden_size, dev.kernels
        xs = self._buffer(dev, "xs", (t, n, i_size))  # time-major input, saved for backward
        gates = self._buffer(dev, "gates", (t, n, GATES * hid))  # pre-activations, then the gates (saved)
        hs = self._buffer(dev, "hs", (t + 1, n, hid))  # hs[0] = h0, hs[s + 1] = h_s
        cs = self._buffer(dev, "cs", (t + 1, n, hid))  # cs[0] = c0, cs[s + 1] = c_s
        load_initial_state(self, dev, hs[0], h0, "h0")
        load_initial_state(self, dev, cs[0], c0, "c0")
        k.swap_leading_axes(xs, x)
        # the input projection of every step at once: (T*N, I) @ (I, 4H) + b_ih
        k.gemm(gates.reshape(t * n, GATES * hid), xs.reshape(t * n, i_size), self.weight_ih.data, trans_b=True,
               bias=self.bias_ih.data)
        # then every step: gates[t] += h_{t-1} @ W_hh^T + b_hh, and the cell
        k.lstm_sequence_forward(hs, cs, gates, self.weight_hh.data, self.bias_hh.data)
        y = self._buffer(dev, "y", (n, t, hid))
        k.swap_leading_axes(y, hs[1:])
        self._given = (h0 is not None, c0 is not None)
        self._initial_grads = None
        return y

    def backward(self, dy):
        """dx for ``dy`` (batch, time, hidden_size), the gradient of every hidden state forward returned;
        overwrites the parameters' ``.grad``, and sets ``initial_state_grad`` for the initial states given."""
        dev, k = self.device, self.device.kernels
        xs, gates, hs, cs = (self._buffers[name] for name in ("xs", "gates", "hs", "cs"))
        t, n, i_size = xs.shape
        hid, rows = self.hidden_size, t * n
        dys = self._buffer(dev, "dys", (t, n, hid))
        k.swap_leading_axes(dys, dy)
        dpre = self._buffer(dev, "dpre", (t, n, GATES * hid))  # every step's, for the GEMMs after the loop
        dh, dc = self._buffer(dev, "dh", (n, hid)), self._buffer(dev, "dc", (n, hid))  # at the end h0's, c0's gradients
        want_h0, want_c0 = self._given
        # every step, last to first; dh_{-1} (one more GEMM) only when h0 was given
        k.lstm_sequence_backward(dpre, dh, dc, dys, gates, cs, self.weight_hh.data, want_h0)
        # over all T steps at once: (4H, T*N) @ (T*N, I) and @ (T*N, H); the bias gradients are the same sums
        dpre_rows = dpre.reshape(rows, GATES * hid)
        k.gemm(self.weight_ih.grad, dpre_rows, xs.reshape(rows, i_size), trans_a=True)
        k.gemm(self.weight_hh.grad, dpre_rows, hs[:t].reshape(rows, hid), trans_a=True)
        k.column_sums(self.bias_ih.grad, dpre_rows)
        k.scale(self.bias_hh.grad, self.bias_ih.grad, 1.0)
        dh0 = dc0 = None
        if want_h0:
            dh0 = self._buffer(dev, "dh0", (n, hid))
            k.scale(dh0, dh, 1.0)
        if want_c0:
            dc0 = self._buffer(dev, "dc0", (n, hid))
            k.scale(dc0, dc, 1.0)
        self._initial_grads = (dh0, dc0)
        if not self.needs_input_grad:
            return None
        dxs = self._buffer(dev, "dxs", (t, n, i_size))
        k.gemm(dxs.reshape(rows, i_size), dpre_rows, self.weight_ih.data)
        dx = self._buffer(dev, "dx", (n, t, i_size))
        k.swap_leading_axes(dx, dxs)
        return dx

    @property
    def last_state(self):
        """(h_T, c_T), each (batch, hidden_size): the states after the last step of the last forward (views of
        the layer's buffers, overwritten by the next forward)."""
        if "hs" not in self._buffers:
            raise RuntimeError("LSTM.last_state: run forward first")
        hs, cs = self._buffers["hs"], self._buffers["cs"]
        return hs[hs.shape[0] - 1], cs[cs.shape[0] - 1]

    @property
    def initial_state_grad(self):
        """(dh0, dc0) after backward: the gradients of the initial states the last forward was given (None for
        one it was not given, or before backward)."""
        return self._initial_grads if self._initial_grads is not None else (None, None)

