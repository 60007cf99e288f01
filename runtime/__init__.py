"""The runtime: devices (where arrays live, which kernel backend computes on them) and parameters.

Above the kernel layer, below ``layers/`` and ``optim/``. Importing it does not import numba (a
``Device`` loads the kernel layer when it is made), so the simulator can still be chosen first.
"""

from .device import Device, DeviceUnavailable, device_of, host_device
from .parameters import FlatParameters, Parameter
from .threads import set_threads, thread_settings

__all__ = ["Device", "DeviceUnavailable", "device_of", "host_device", "Parameter", "FlatParameters", "set_threads",
           "thread_settings"]
