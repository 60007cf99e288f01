"""Find out, without importing numba, whether a real CUDA GPU is here, and prepare the environment.

Numba reads ``NUMBA_ENABLE_CUDASIM`` once, when it is first imported, so the choice between a real
GPU and the CUDA simulator has to be made before anything imports numba. This module imports only
the standard library so that ``cli.py`` and ``tests/conftest.py`` can make that choice first.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

SIMULATOR_VARIABLE = "NUMBA_ENABLE_CUDASIM"


@lru_cache(maxsize=1)
def real_gpu_count() -> int:
    """Number of CUDA devices the driver reports (0 with no driver or no device)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            driver = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def simulator_requested() -> bool:
    return os.environ.get(SIMULATOR_VARIABLE, "0") not in ("", "0")


def numba_imported() -> bool:
    return "numba" in sys.modules


def enable_simulator() -> None:
    """Turn Numba's CUDA simulator on; only possible before numba is imported."""
    if simulator_requested():
        return
    if numba_imported():
        raise RuntimeError(
            "the CUDA simulator must be chosen before numba is imported: "
            f"start Python with {SIMULATOR_VARIABLE}=1, or use `python cli.py --device sim ...`"
        )
    os.environ[SIMULATOR_VARIABLE] = "1"


def gpu_or_simulator() -> str:
    """Where CUDA kernels will run: "gpu" with a CUDA GPU here, else "simulator" (switched on now, before
    numba loads). For a script or notebook that should run unchanged with and without a GPU."""
    if simulator_requested():
        return "simulator"
    if real_gpu_count() > 0:
        return "gpu"
    if numba_imported():
        raise RuntimeError(f"no CUDA GPU here, and numba was imported before the simulator could be chosen: "
                           f"restart Python with {SIMULATOR_VARIABLE}=1")
    os.environ[SIMULATOR_VARIABLE] = "1"
    return "simulator"


def ensure_numba_cache_dir() -> None:
    """Point NUMBA_CACHE_DIR at a writable folder when the checkout itself is read-only.

    Numba caches compiled CPU twins next to their source; in a read-only checkout (and with an
    unwritable HOME) ``cache=True`` would make the import fail.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    package_dir = Path(__file__).resolve().parent.parent
    if os.access(package_dir / "cuda_kernels", os.W_OK):
        return
    cache = Path(tempfile.gettempdir()) / f"tilegrad-numba-cache-{os.getuid() if hasattr(os, 'getuid') else 0}"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(cache)


def install_hint(extra: str = "cuda") -> str:
    """The command that installs an extra: ``pip install -e '.[cuda]'`` in a source checkout (a pyproject.toml
    beside the packages), ``pip install 'tilegrad[cuda]'`` for an installed wheel (where -e '.' means nothing)."""
    from pathlib import Path

    if (Path(__file__).resolve().parent.parent / "pyproject.toml").is_file():
        return f"pip install -e '.[{extra}]'"
    return f"pip install 'tilegrad[{extra}]'"
