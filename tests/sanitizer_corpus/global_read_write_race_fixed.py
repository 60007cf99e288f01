"""Fixed twin of global_read_write_race: read one array, write another."""
# Ported from: jrprice/Oclgrind tests/kernels/data-race/global_read_write_race.cl (out of place)
import numpy as np
from numba import cuda

THREADS = 32


@cuda.jit
def shift(out, data):
    i = cuda.grid(1)
    if i > 0:
        out[i] = data[i - 1]


EXPECT = []


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.int32))
    shift[1, THREADS](out, cuda.to_device(np.arange(THREADS, dtype=np.int32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
