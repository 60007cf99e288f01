"""Sequential: layers run forward in order and backward in reverse, parameters in one flat buffer.

Epilogue fusion: a Dense layer followed by a ReLU or Tanh computes ``act(x @ W^T + b)`` in its GEMM's
epilogue, while each tile of the output is still in cache, instead of writing the pre-activation and
reading it back in a second pass (one pass over the activations, one kernel call and its Python fewer).
The activation layer keeps the fused output as its saved ``y``, so backward runs unchanged, layer by
layer. ``Sequential(..., fuse=False)`` runs every layer on its own, to compare.
"""

from __future__ import annotations

from layers.base import Layer
from runtime.parameters import FlatParameters


class Sequential(Layer):
    """Layers run forward in order and backward in reverse; every parameter lives in one flat buffer.

    A Dense layer followed by ReLU or Tanh computes the activation in its GEMM's epilogue (``fuse=False``
    runs them apart); the first layer computes no input gradient.
    """

    def __init__(self, *layers: Layer, fuse: bool = True):
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
        self.fuse = bool(fuse)
        # callables called as hook(layer) right after each layer's backward (the gradients of its parameters
        # are final then): data-parallel training starts reducing them while backward goes on below
        self.backward_hooks: list = []
        self._plan_stages()

    def _plan_stages(self) -> None:
        """self.stages: (index, layer, the activation fused into it or None), the order forward runs in."""
        self._planned_for = list(self.layers)  # replanned if someone edits self.layers afterwards
        stages, i = [], 0
        while i < len(self.layers):
            layer = self.layers[i]
            after = self.layers[i + 1] if i + 1 < len(self.layers) else None
            fusable = getattr(layer, "fusable_activations", ())
            if self.fuse and after is not None and getattr(after, "activation", None) in fusable:
                stages.append((i, layer, after))
                i += 2
            else:
                stages.append((i, layer, None))
                i += 1
        self.stages = stages

    def planned_stages(self) -> list:
        """The stages forward runs, replanned first if ``self.layers`` was edited."""
        if self.layers != self._planned_for:
            self._plan_stages()
        return self.stages

    def forward(self, x):
        for stage in self.planned_stages():
            x = self.run_stage(stage, x)
        return x

    @staticmethod
    def run_stage(stage, x):
        """One stage's forward: a layer, or a layer with its activation fused into its epilogue."""
        _, layer, activation = stage
        if activation is None:
            return layer.forward(x)
        y = layer.forward(x, activation=activation.activation)
        activation.adopt_output(y)
        return y

    @staticmethod
    def stage_name(stage) -> str:
        """A stage's label for the profiler: "3:Dense+ReLU" for a fused pair."""
        index, layer, activation = stage
        return f"{index}:{type(layer).__name__}" + ("" if activation is None else f"+{type(activation).__name__}")

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
            for hook in self.backward_hooks:
                hook(layer)
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
        inner = ",\n  ".join([repr(layer) for layer in self.layers] + ([] if self.fuse else ["fuse=False"]))
        return f"Sequential(\n  {inner}\n)"
