"""GRU, batch-first, PyTorch's conventions: (N, T, input_size) -> all hidden states (N, T, hidden_size).

Gates in PyTorch's order (r, z, n), each a block of hidden_size rows of the parameters, with b_hn inside the
reset product as PyTorch has it:
    r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)      z = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))   h_t = (1 - z) * n + z * h_{t-1}
weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,): a ``torch.nn.GRU(I, H, batch_first=True)``'s
``weight_ih_l0`` etc. load as they are.

Internally time-major. Forward: one GEMM projects the inputs of all T steps at once; per step one GEMM
computes h_{t-1} W_hh^T + b_hh (kept apart from the input projection, and saved: n multiplies its third
part by r) and one fused kernel (``gru_cell_forward``) the gates and h_t. Backward (BPTT): per step one fused
kernel (``gru_cell_backward``) and one GEMM adding into dh_{t-1}; the weight gradients, bias gradients and dx
are then one GEMM (or column sum) each over all T steps.
"""

from __future__ import annotations

from runtime.device import Device

from .lstm import GatedRecurrent, load_initial_state

GATES = 3


class GRU(GatedRecurrent):
    """GRU, batch-first: (batch, time, input_size) -> every hidden state (batch, time, hidden_size);
    PyTorch's ``nn.GRU(input_size, hidden_size, batch_first=True)`` with one layer.

    Parameters in PyTorch's order and gate order (r, z, n), initialized as PyTorch does,
    U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), from ``seed``. The initial state is (batch, hidden_size)
    (PyTorch's has a leading num_layers axis of 1).
    """

    gates = GATES

    def __init__(self, input_size: int, hidden_size: int, device: Device | str = "cpu", seed: int = 0):
        super().__init__(input_size, hidden_size, device, seed)
        self._given = False  # whether the last forward got h0
        self._initial_grad = None

    def forward(self, x, h0=None):
        """Every hidden state (batch, time, hidden_size) for ``x`` (batch, time, input_size), starting from
        ``h0`` ((batch, hidden_size); zeros when None). The final state is ``last_state``."""
        dev = self.device_for(x)
        self._expect(x, 3, f"(batch, time, {self.input_size})", {2: self.input_size})
        n, t, i_size = x.shape
        hid, k = self.hidden_size, dev.kernels
        xs = self._buffer(dev, "xs", (t, n, i_size))  # time-major input, saved for backward
        gates = self._buffer(dev, "gates", (t, n, GATES * hid))  # the input projections, then the gates (saved)
        hproj = self._buffer(dev, "hproj", (t, n, GATES * hid))  # h_{t-1} W_hh^T + b_hh (saved)
        hs = self._buffer(dev, "hs", (t + 1, n, hid))  # hs[0] = h0, hs[s + 1] = h_s
        load_initial_state(self, dev, hs[0], h0, "h0")
        k.swap_leading_axes(xs, x)
        # the input projection of every step at once: (T*N, I) @ (I, 3H) + b_ih
        k.gemm(gates.reshape(t * n, GATES * hid), xs.reshape(t * n, i_size), self.weight_ih.data, trans_b=True,
               bias=self.bias_ih.data)
        for step in range(t):
            k.gemm(hproj[step], hs[step], self.weight_hh.data, trans_b=True, bias=self.bias_hh.data)
            k.gru_cell_forward(hs[step + 1], gates[step], gates[step], hproj[step], hs[step])
        y = self._buffer(dev, "y", (n, t, hid))
        k.swap_leading_axes(y, hs[1:])
        self._given = h0 is not None
        self._initial_grad = None
        return y

    def backward(self, dy):
        """dx for ``dy`` (batch, time, hidden_size), the gradient of every hidden state forward returned;
        overwrites the parameters' ``.grad``, and sets ``initial_state_grad`` when forward was given h0."""
        dev, k = self.device, self.device.kernels
        xs, gates, hproj, hs = (self._buffers[name] for name in ("xs", "gates", "hproj", "hs"))
        t, n, i_size = xs.shape
        hid, rows = self.hidden_size, t * n
        dys = self._buffer(dev, "dys", (t, n, hid))
        k.swap_leading_axes(dys, dy)
        dxproj = self._buffer(dev, "dxproj", (t, n, GATES * hid))  # every step's, for the GEMMs after the loop
        dhproj = self._buffer(dev, "dhproj", (t, n, GATES * hid))
        dh_next, dh_prev = self._buffer(dev, "dh_a", (n, hid)), self._buffer(dev, "dh_b", (n, hid))
        k.fill(dh_next, 0.0)  # nothing flows back into the last step from the future
        for step in reversed(range(t)):
            k.gru_cell_backward(dxproj[step], dhproj[step], dh_prev, dys[step], dh_next, gates[step], hproj[step],
                                hs[step])
            if step or self._given:  # dh_{-1} only when h0 was given
                k.gemm(dh_prev, dhproj[step], self.weight_hh.data, beta=1.0)  # + the path through W_hh
            dh_next, dh_prev = dh_prev, dh_next
        dx_rows, dh_rows = dxproj.reshape(rows, GATES * hid), dhproj.reshape(rows, GATES * hid)
        k.gemm(self.weight_ih.grad, dx_rows, xs.reshape(rows, i_size), trans_a=True)
        k.gemm(self.weight_hh.grad, dh_rows, hs[:t].reshape(rows, hid), trans_a=True)
        k.column_sums(self.bias_ih.grad, dx_rows)
        k.column_sums(self.bias_hh.grad, dh_rows)
        if self._given:
            self._initial_grad = self._buffer(dev, "dh0", (n, hid))
            k.scale(self._initial_grad, dh_next, 1.0)
        if not self.needs_input_grad:
            return None
        dxs = self._buffer(dev, "dxs", (t, n, i_size))
        k.gemm(dxs.reshape(rows, i_size), dx_rows, self.weight_ih.data)
        dx = self._buffer(dev, "dx", (n, t, i_size))
        k.swap_leading_axes(dx, dxs)
        return dx

    @property
    def last_state(self):
        """h_T (batch, hidden_size): the state after the last step of the last forward (a view of the layer's
        buffer, overwritten by the next forward)."""
        if "hs" not in self._buffers:
            raise RuntimeError("GRU.last_state: run forward first")
        hs = self._buffers["hs"]
        return hs[hs.shape[0] - 1]

    @property
    def initial_state_grad(self):
        """dh0 after backward, when the last forward was given h0 (else None)."""
        return self._initial_grad

