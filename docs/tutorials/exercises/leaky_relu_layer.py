"""Exercise (chapter 4): the backward pass of a LeakyReLU layer, checked by engine.gradcheck.

Grade it with:  python cli.py check --only leaky_relu_layer
"""

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
        """Return dL/dx given dy = dL/dy. (The forward saved x in self._x.)"""
        raise NotImplementedError("write the backward pass: see docs/tutorials/04-layers-and-backward.md")

    def config(self):
        return {"slope": self.slope}
