"""The engine (floor 4): graphs, models, the training loop, data, checkpoints, inference, PyTorch
state_dict loading and gradient checks.

``Device`` is the runtime's (floor 2), offered here too for convenience. Names are imported lazily
(PEP 562) so that importing ``engine`` loads no numba: the CUDA simulator can only be chosen before.
"""

from importlib import import_module

_EXPORTS = {
    "Device": "runtime.device",
    "DeviceUnavailable": "runtime.device",
    "set_threads": "runtime.threads",
    "thread_settings": "runtime.threads",
    "Sequential": "engine.sequential",
    "Graph": "engine.graph",
    "Add": "engine.graph",
    "fit": "engine.training",
    "evaluate": "engine.training",
    "CapturedStep": "engine.cuda_graph",
    "save": "engine.checkpoint",
    "load": "engine.checkpoint",
    "load_classifier": "engine.inference",
    "predict": "engine.inference",
    "load_state_dict": "engine.interop",
    "state_dict": "engine.interop",
    "gradcheck": "engine.gradient_check",
    "clip_grad_norm": "engine.clipping",
    "summary": "engine.model_summary",
    "load_digits": "engine.data",
    "load_mnist": "engine.data",
    "load_npz": "engine.data",
    "read_idx": "engine.data",
    "batches": "engine.data",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
