"""After a first barrier, each thread writes its slot and thread 0 sums them all in the same interval."""
# Ported from: jrprice/Oclgrind tests/kernels/data-race/local_read_write_race.cl
import numpy as np
from _corpus_expect import finding
from numba import cuda, int32

THREADS = 32


@cuda.jit
def local_read_write(data):
    scratch = cuda.shared.array(THREADS, int32)
    lid = cuda.threadIdx.x
    scratch[lid] = 0
    cuda.syncthreads()
    scratch[lid] = lid  # <- RACE-W
    if lid == 0:
        x = 0
        for i in range(THREADS):
            x += scratch[i]  # <- RACE-R
        data[0] = x


EXPECT = [finding("race", "RACE-W", "RACE-R", space="shared", hazard="RAW", scope="intra-warp")]


def launch():
    data = cuda.to_device(np.zeros(1, np.int32))
    local_read_write[1, THREADS](data)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
