"""Gradient checking: float64 central differences against a layer's hand-written backward.

``gradcheck(layer, input_shape)`` builds a float64 twin of the layer on the NumPy reference device
(same parameters), and for the scalar f(x) = sum(forward(x) * r) with a random r compares
  - backward(r) with central differences over every element of the input and every parameter;
  - then the layer on its own device (cpu, or cuda/simulator), in float32, with that float64 answer.
It reports the worst element of each, so a wrong index in a backward pass points at itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runtime.device import Device


@dataclass
class GradcheckResult:
    layer: str
    worst: dict = field(default_factory=dict)  # name -> (relative error, index)
    device_worst: dict = field(default_factory=dict)
    tolerance: float = 1e-6
    device_tolerance: float = 1e-3

    @property
    def ok(self) -> bool:
        return all(e <= self.tolerance for e, _ in self.worst.values()) and \
            all(e <= self.device_tolerance for e, _ in self.device_worst.values())

    def __str__(self) -> str:
        lines = [f"gradcheck {self.layer}: {'ok' if self.ok else 'FAILED'}"]
        for label, table, tol in (("float64 vs central differences", self.worst, self.tolerance),
                                  ("device vs float64", self.device_worst, self.device_tolerance)):
            for name, (err, index) in table.items():
                mark = "" if err <= tol else "  <-- exceeds tolerance"
                lines.append(f"  {label}: {name} worst relative error {err:.2e} at {index}{mark}")
        return "\n".join(lines)


def _twin(layer, device: Device):
    config = layer.config()
    if "device" in type(layer).__init__.__code__.co_varnames:
        config["device"] = device
    twin = type(layer)(**config)
    for mine, theirs in zip(twin.parameters(), layer.parameters()):
        mine.load(theirs.numpy().astype(np.float64))
    twin.training = layer.training
    return twin


def _rel_error(a, b) -> tuple[float, tuple]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    diff = np.abs(a - b) / scale
    index = np.unravel_index(int(diff.argmax()), diff.shape) if diff.size else ()
    return float(diff.max(initial=0.0)), tuple(int(i) for i in index)


def _central_differences(values: np.ndarray, f, eps: float) -> np.ndarray:
    """d f / d values, element by element, nudging ``values`` in place (and restoring it)."""
    flat = values.reshape(-1)  # a view: nudging it nudges what f reads
    numeric = np.zeros(flat.size)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        up = f()
        flat[j] = old - eps
        down = f()
        flat[j] = old
        numeric[j] = (up - down) / (2 * eps)
    return numeric.reshape(values.shape)


def gradcheck(layer, input_shape, seed: int = 0, eps: float = 1e-6, tolerance: float = 1e-6,
              device_tolerance: float = 1e-3, input_scale: float = 1.0) -> GradcheckResult:
    """Check ``layer``'s backward against float64 central differences on a random input of ``input_shape``.

    A float64 twin of the layer (same parameters) is differentiated numerically and compared with its
    backward (``tolerance``); then the layer itself, on its own device in float32, is compared with the
    twin (``device_tolerance``). The result's ``ok`` says whether both held; ``worst`` names the errors.
    """
    rng = np.random.default_rng(seed)
    reference = Device("numpy")
    twin = _twin(layer, reference)
    x = rng.standard_normal(input_shape) * input_scale
    y = twin.forward(x.copy())
    r = rng.standard_normal(y.shape)

    def f(x_value):
        twin.set_random_state(0)  # stochastic layers (dropout): the same mask at every evaluation
        return float(np.sum(twin.forward(x_value) * r))

    f(x)
    dx = twin.backward(r.copy())
    analytic = {"input": None if dx is None else np.array(dx)}
    analytic.update({p.name or f"param{i}": np.array(p.grad) for i, p in enumerate(twin.parameters())})

    result = GradcheckResult(type(layer).__name__, tolerance=tolerance, device_tolerance=device_tolerance)
    if analytic["input"] is not None:
        result.worst["input"] = _rel_error(analytic["input"], _central_differences(x, lambda: f(x), eps))
    for i, p in enumerate(twin.parameters()):
        name = p.name or f"param{i}"
        result.worst[name] = _rel_error(analytic[name], _central_differences(p.data, lambda: f(x), eps))

    # the layer itself, on its own device, in float32
    dev = layer.device if layer.device is not None else Device("cpu")
    layer.set_random_state(0)
    y_dev = dev.to_numpy(layer.forward(dev.asarray(x)))
    twin.set_random_state(0)
    result.device_worst["output"] = _rel_error(y_dev, twin.forward(x))
    dx_dev = layer.backward(dev.asarray(r))
    if dx_dev is not None and analytic["input"] is not None:
        result.device_worst["input"] = _rel_error(dev.to_numpy(dx_dev), analytic["input"])
    for i, p in enumerate(layer.parameters()):
        name = p.name or f"param{i}"
        result.device_worst[name] = _rel_error(dev.to_numpy(p.grad), analytic[name])
    return result
