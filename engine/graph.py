"""Graph: a small DAG of named nodes, run forward in topological order and backward in reverse,
summing gradients where a value fans out (e.g. the skip path of a residual block).

    g = Graph(inputs=["x"])
    g.add("conv1", L.Conv2D(4, 4, 3, padding=1, device=dev), "x")
    g.add("relu1", L.ReLU(), "conv1")
    g.add("sum", Add(), "relu1", "x")          # residual connection
    g.output("sum")
"""

from __future__ import annotations

from layers.base import Layer
from runtime.parameters import FlatParameters


class Add(Layer):
    """y = a + b (same shape); backward hands dy to both inputs."""

    def forward(self, a, b):
        dev = self.device_for(a)
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f"Add: input shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
        y = self._buffer(dev, "y", a.shape)
        dev.kernels.add(y, a, b)
        return y

    def backward(self, dy):
        return dy, dy


class Graph(Layer):
    """A DAG of named layers: ``add(name, layer, *sources)`` in topological order, then ``output(name)``.

    Forward runs the nodes in the order they were added; backward runs them in reverse and sums the
    gradients of a value read by several nodes (a residual block's skip path).
    """

    def __init__(self, inputs=("x",)):
        super().__init__()
        self.inputs = list(inputs)
        self.nodes: dict[str, tuple[Layer, list[str]]] = {}
        self._output: str | None = None
        self.output_name: str | None = None
        self.flat = None
        self.device = None
        self.backward_hooks: list = []  # hook(layer) after each node's backward, as in Sequential

    def add(self, name: str, layer: Layer, *sources: str) -> Graph:
        """Add node ``name`` computing ``layer`` of the named sources (inputs or earlier nodes); returns the graph."""
        if name in self.nodes or name in self.inputs:
            raise ValueError(f"Graph: node {name!r} already exists")
        for s in sources:
            if s not in self.nodes and s not in self.inputs:
                raise ValueError(f"Graph: node {name!r} reads {s!r}, which is not defined yet")
        self.nodes[name] = (layer, list(sources))  # insertion order is a topological order
        return self

    def output(self, name: str) -> Graph:
        """Make node ``name`` the graph's output and move the parameters into flat buffers; returns the graph."""
        if name not in self.nodes:
            raise ValueError(f"Graph: unknown output node {name!r}")
        self._output = name
        self.output_name = name
        params = self.parameters()
        if params:
            self.device = params[0].device
            self.flat = FlatParameters(params)
        return self

    def forward(self, *xs):
        if self._output is None:
            raise ValueError("Graph: call .output(name) before forward")
        values = dict(zip(self.inputs, xs))
        for name, (layer, sources) in self.nodes.items():
            values[name] = layer.forward(*[values[s] for s in sources])
        self._values = values
        return values[self._output]

    def backward(self, dy):
        grads: dict[str, object] = {self._output: dy}
        for name, (layer, sources) in reversed(list(self.nodes.items())):
            if name not in grads:
                for hook in self.backward_hooks:  # this node does not reach the output: its gradients are final
                    hook(layer)
                continue
            upstream = layer.backward(grads.pop(name))
            for hook in self.backward_hooks:
                hook(layer)
            upstream = upstream if isinstance(upstream, tuple) else (upstream,)
            for source, g in zip(sources, upstream):
                if g is None:
                    continue
                if source in grads:  # fan-out: sum the gradients arriving from every consumer
                    dev = layer.device_for(g)
                    total = self._buffer(dev, f"fan_in.{source}", g.shape)
                    dev.kernels.add(total, grads[source], g)  # in place is fine: elementwise
                    grads[source] = total
                else:
                    grads[source] = g
        return grads.get(self.inputs[0])

    @property
    def layers(self) -> list[Layer]:
        """The node layers in insertion (topological) order, as for Sequential."""
        return [layer for layer, _ in self.nodes.values()]

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def train(self):
        for layer, _ in self.nodes.values():
            layer.train()
        return super().train()

    def eval(self):
        for layer, _ in self.nodes.values():
            layer.eval()
        return super().eval()
