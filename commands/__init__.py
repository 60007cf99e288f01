"""The commands of ``python cli.py``, one module each: ``add_parser`` declares the command's arguments and
``run(args) -> int`` carries it out, returning the exit status.

Each module imports only the standard library at import time: numba must not load before
``hardware.cuda_probe`` has had its chance to switch the CUDA simulator on (``--device sim``), so
everything numba-dependent is imported inside ``run``.
"""
