"""Fixed twin of read_negative_index: thread 0 writes 0 instead of reading x[-1]."""
# Ported from: jrprice/Oclgrind tests/kernels/data-race/global_read_write_race.cl's data[i-1], guarded
import numpy as np
from numba import cuda, float32

THREADS = 32


@cuda.jit
def shift_right(out, x):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[i - 1] if i > 0 else float32(0.0)


EXPECT = []


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.float32))
    shift_right[1, THREADS](out, cuda.to_device(np.arange(THREADS, dtype=np.float32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
