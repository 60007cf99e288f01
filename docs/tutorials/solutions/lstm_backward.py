"""Reference solution for the LSTM cell backward exercise (chapter 8)."""

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True)
def lstm_cell_backward(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev):
    one = np.float32(1.0)
    rows, hidden = c.shape
    for r in prange(rows):
        for j in range(hidden):
            i, f = gates[r, j], gates[r, hidden + j]
            g, o = gates[r, 2 * hidden + j], gates[r, 3 * hidden + j]
            tc = np.float32(math.tanh(c[r, j]))
            dh = dh_out[r, j] + dh_next[r, j]
            dc = dc_next[r, j] + dh * o * (one - tc * tc)
            dpre[r, j] = dc * g * i * (one - i)
            dpre[r, hidden + j] = dc * c_prev[r, j] * f * (one - f)
            dpre[r, 2 * hidden + j] = dc * i * (one - g * g)
            dpre[r, 3 * hidden + j] = dh * tc * o * (one - o)
            dc_prev[r, j] = dc * f
