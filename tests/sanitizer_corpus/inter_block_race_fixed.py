"""Fixed twin of inter_block_race: each block writes its own slice."""
# Ported from: GKLEE tests/inter_block_race/inter_block_race.cu (indexed by the global thread id)
import numpy as np
from numba import cuda

THREADS = 32
BLOCKS = 2


@cuda.jit
def k(data):
    data[cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x] = cuda.blockIdx.x


EXPECT = []


def launch():
    data = cuda.to_device(np.zeros(THREADS * BLOCKS, np.int32))
    k[BLOCKS, THREADS](data)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
