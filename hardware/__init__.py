"""The ground floor: facts about this machine, found with the standard library only.

Nothing here imports another tilegrad package, and no module imports numba at import time, so
``hardware.cuda_probe`` can choose the CUDA simulator before numba loads.
"""
