"""numba-cuda 0.30 against NumPy 2.5: put back the one alias its CUDA target still registers.

NumPy 2.5 removed ``np.row_stack`` (an alias of ``np.vstack``, deprecated since 2.0). numba-cuda 0.30.4
registers an overload for it while loading its CUDA target, the first time any kernel compiles, so with
NumPy 2.5 every CUDA compile fails with "module 'numpy' has no attribute 'row_stack'". The alias is
exactly what NumPy itself had; it is only added where NumPy no longer has it, and must be in place before
numba-cuda compiles its first kernel.
"""

import numpy as np


def restore_removed_aliases() -> list[str]:
    """Add the aliases NumPy removed and numba-cuda still needs; returns the names it added."""
    added = []
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack
        added.append("row_stack")
    return added


RESTORED = restore_removed_aliases()
