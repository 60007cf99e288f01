"""Exercise (chapter 8): the LSTM cell's fused backward, one step, PyTorch's gate order (i, f, g, o).

The forward pass saved gates = [i, f, g, o] (already activated: sigmoid, sigmoid, tanh, sigmoid), the new
cell state c and the previous one c_prev. With dh = dh_out + dh_next and tc = tanh(c):
    dc = dc_next + dh * o * (1 - tc^2);   dc_prev = dc * f
    d pre_i = dc * g * i(1 - i);  d pre_f = dc * c_prev * f(1 - f);  d pre_g = dc * i * (1 - g^2);
    d pre_o = dh * tc * o(1 - o)
Grade it with:  python cli.py check --only lstm_backward
"""

from numba import njit, prange  # noqa: F401


@njit(parallel=True)
def lstm_cell_backward(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev):
    """dpre, gates: (N, 4H) float32, the four gates side by side in column blocks [i | f | g | o];
    dc_prev, dh_out, dh_next, dc_next, c, c_prev: (N, H) float32. One pass over memory: every input read
    once, every output written once."""
    raise NotImplementedError("write the fused backward: see docs/tutorials/08-sequence-models.md")
