"""Sequential: layers run forward in order and backward in reverse, parameters in one flat buffer."""

from __future__ import annotations

from layers.base import Layer

from .parameters import FlatParameters


class Sequential(Layer):
    def __init__(self, *layers: Layer):
        super().__init__()
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a layer")
        self.layers = list(layers)
        self.layers[0].needs_input_grad = False  # the data needs no gradient: skip that GEMM/col2im
        params = self.parameters()
        self.device = params[0].device if params else None
        self.flat = FlatParameters(params) if params else None

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def train(self):
        for layer in self.layers:
            layer.train()
        return super().train()

    def eval(self):
        for layer in self.layers:
            layer.eval()
        return super().eval()

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"
