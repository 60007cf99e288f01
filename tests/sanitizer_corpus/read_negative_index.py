"""A shift right without its i > 0 guard: thread 0 reads x[-1], which NumPy (and so the simulator)
wraps silently to the last element; on a GPU it reads the 4 bytes before the allocation."""
# Ported from: jrprice/Oclgrind tests/kernels/data-race/global_read_write_race.cl's data[i-1], unguarded
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32


@cuda.jit
def shift_right(out, x):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[i - 1]  # <- OOB


EXPECT = [finding("out_of_bounds", "OOB", space="global")]


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.float32))
    shift_right[1, THREADS](out, cuda.to_device(np.arange(THREADS, dtype=np.float32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
