"""Inside a CUDA graph capture every copy, launch and read back is either recorded (replayed with the graph) or
refused with one error: a copy on the legacy stream 0 or another stream, ``cuda.to_device``, a read back, a bare
``cuda.jit`` launch, a host array passed to a kernel, a pageable source. In the simulator the guards stand in for
what the driver refuses on a GPU; there (`pytest -m gpu`) the same tests run the driver's stream capture."""

import numpy as np
import pytest
from numba import cuda

from cuda_kernels import SIMULATOR, launch
from engine import Device

pytestmark = pytest.mark.gpu


@pytest.fixture()
def dev():
    return Device("cuda")


@pytest.fixture()
def capture(dev):
    """Begin a capture on the device's stream; always end it, so a failing case leaves no guard behind."""
    launch.begin_capture(dev.stream)
    yield
    launch.abort_capture()


def _refused(pattern, action):
    with pytest.raises(RuntimeError, match=pattern):
        action()


def test_a_copy_on_stream_0_is_refused(dev, capture):
    _refused(r"^CUDA graph capture: a host-to-device copy on the legacy default stream \(stream 0\)",
             lambda: BUFFERS["out"].copy_to_device(np.ones(4, np.float32)))


def test_a_copy_on_another_stream_is_refused(dev, capture):
    _refused(r"^CUDA graph capture: a host-to-device copy on another stream than the one being captured",
             lambda: BUFFERS["out"].copy_to_device(np.ones(4, np.float32), stream=BUFFERS["other"]))


def test_an_unrecorded_copy_on_the_captured_stream_is_refused(dev, capture):
    _refused(r"^CUDA graph capture: a host-to-device copy outside the recorder",
             lambda: BUFFERS["out"].copy_to_device(np.ones(4, np.float32), stream=dev.stream))


def test_to_device_and_read_backs_are_refused(dev, capture):
    _refused(r"^CUDA graph capture: cuda.to_device on the legacy default stream", lambda: cuda.to_device(np.ones(4)))
    _refused(r"^CUDA graph capture: a read back \(device to host\) on the legacy default stream",
             lambda: BUFFERS["out"].copy_to_host())
    _refused(r"^to_numpy reading the GPU during a CUDA graph capture", lambda: dev.to_numpy(BUFFERS["out"]))


def test_copy_from_host_needs_pinned_staging(dev, capture):
    _refused(r"^CUDA graph capture: Device.copy_from_host from a pageable host array",
             lambda: dev.copy_from_host(BUFFERS["out"], np.ones(4, np.float32)))


def test_a_kernel_given_a_host_array_is_refused(dev, capture):
    _refused(r"^CUDA graph capture: fill_kernel given a host \(NumPy\) array",
             lambda: _fill_kernel()[1, 32](np.zeros(4, np.float32), np.float32(1.0)))


@pytest.mark.skipif(not SIMULATOR, reason="on a GPU the driver records a bare launch on the captured stream")
def test_an_unrecorded_launch_is_refused(dev, capture):
    @cuda.jit
    def bare(x):
        x[0] = 1.0

    _refused(r"^CUDA graph capture: an unrecorded launch of bare", lambda: bare[1, 1](BUFFERS["out"]))


def test_a_recorded_copy_rereads_its_pinned_source_at_every_replay(dev):
    out, staging = BUFFERS["out"], dev.pinned_empty((4,))
    staging[...] = 1.0
    launch.begin_capture(dev.stream)
    try:
        dev.copy_from_host(out, staging)  # a memcpy node: its source is read at each replay
        _fill_kernel()[1, 32](BUFFERS["twice"], np.float32(2.0))
    except BaseException:
        launch.abort_capture()
        raise
    graph = launch.end_capture()
    assert [name for name, _, _ in graph.launches] == ["copy_from_host", "fill_kernel"]
    for value in (3.0, 5.0):
        staging[...] = value
        graph.launch()
        dev.synchronize_stream()
        np.testing.assert_array_equal(dev.to_numpy(out), np.full(4, value, np.float32))


def test_the_guards_end_with_the_capture(dev):
    launch.begin_capture(dev.stream)
    launch.abort_capture()
    BUFFERS["out"].copy_to_device(np.full(4, 7.0, np.float32))  # stream 0 again, outside any capture
    np.testing.assert_array_equal(BUFFERS["out"].copy_to_host(), np.full(4, 7.0, np.float32))
    assert not launch.capturing()


# Buffers made once, before any capture (nothing may allocate inside one).
BUFFERS = {}


@pytest.fixture(autouse=True, scope="module")
def _buffers():
    dev = Device("cuda")
    BUFFERS.update(out=dev.zeros((4,)), twice=dev.zeros((4,)), other=cuda.stream())
    yield
    BUFFERS.clear()


def _fill_kernel():
    """A registered @gpu_kernel (a fill of the kernel layer), launched directly."""
    return launch.KERNELS["fill_kernel"]
