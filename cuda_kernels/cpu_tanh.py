"""tanh and sigmoid for the CPU twins: a float32 rational approximation that LLVM vectorizes.

``np.tanh`` on a float32 inside a Numba loop is a scalar libm call per element (no SIMD math library
here), many times slower than a vectorized tanh. This is the approximation Eigen uses for float tanh
(a degree-13/6 odd/even rational function on [-7.9, 7.9], x itself below 4e-4): only multiplies, adds
and one divide, so a loop over it becomes SIMD code. Its largest relative error against float64 tanh
over 4 million points of [-12, 12] is 3.4e-7, about 3 float32 ulp (tests/test_elementwise.py checks it).
"""

import numpy as np
from numba import njit

_CLAMP = np.float32(7.90531110763549805)  # beyond it tanh rounds to +-1 in float32
_TINY = np.float32(0.0004)  # below it tanh(x) == x in float32
_A1, _A3, _A5 = np.float32(4.89352455891786e-03), np.float32(6.37261928875436e-04), np.float32(1.48572235717979e-05)
_A7, _A9 = np.float32(5.12229709037114e-08), np.float32(-8.60467152213735e-11)
_A11, _A13 = np.float32(2.00018790482477e-13), np.float32(-2.76076847742355e-16)
_B0, _B2 = np.float32(4.89352518554385e-03), np.float32(2.26843463243900e-03)
_B4, _B6 = np.float32(1.18534705686654e-04), np.float32(1.19825839466702e-06)


@njit(cache=True, fastmath=True, inline="always")
def tanh_float32(x):
    """tanh(x) for a float32 x, to 3.4e-7 relative (see the module's docstring)."""
    if abs(x) < _TINY:
        return x
    v = min(max(x, -_CLAMP), _CLAMP)
    v2 = v * v
    p = ((((((_A13 * v2 + _A11) * v2 + _A9) * v2 + _A7) * v2 + _A5) * v2 + _A3) * v2 + _A1) * v
    q = ((_B6 * v2 + _B4) * v2 + _B2) * v2 + _B0
    return p / q


@njit(cache=True, fastmath=True, inline="always")
def sigmoid_float32(x):
    """sigmoid(x) = (1 + tanh(x / 2)) / 2 for a float32 x: SIMD code where 1 / (1 + exp(-x)) is a scalar exp
    call per element. Its error is absolute, at most 2.3e-7 (half of tanh's relative 3.4e-7, plus rounding): a
    gate of 1e-5 comes out within 2%, one below 1e-7 as 0 (tests/test_elementwise.py checks both)."""
    return np.float32(0.5) + np.float32(0.5) * tanh_float32(np.float32(0.5) * x)
