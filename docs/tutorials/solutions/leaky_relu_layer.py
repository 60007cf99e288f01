"""Reference solution for the LeakyReLU layer exercise (chapter 4)."""

import numpy as np

from layers.base import Layer


class LeakyReLU(Layer):
    def __init__(self, slope: float = 0.1):
        super().__init__()
        self.slope = float(slope)

    def forward(self, x):
        self._x = np.asarray(x)
        return np.where(self._x > 0, self._x, self.slope * self._x)

    def backward(self, dy):
        return np.where(self._x > 0, dy, self.slope * dy)

    def config(self):
        return {"slope": self.slope}
