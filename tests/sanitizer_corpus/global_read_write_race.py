"""Each thread copies its left neighbour's element in place: the neighbour may already have overwritten it."""
# Ported from: jrprice/Oclgrind tests/kernels/data-race/global_read_write_race.cl
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32


@cuda.jit
def shift(data):
    i = cuda.grid(1)
    if i > 0:
        data[i] = data[i - 1]  # <- RACE


EXPECT = [finding("race", "RACE", space="global", scope="intra-warp")]


def launch():
    data = cuda.to_device(np.arange(THREADS, dtype=np.int32))
    shift[1, THREADS](data)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
