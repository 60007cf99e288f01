"""Two blocks write their block index to the same global words: blocks always run concurrently."""
# Ported from: GKLEE tests/inter_block_race/inter_block_race.cu
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32
BLOCKS = 2


@cuda.jit
def k(data):
    data[cuda.threadIdx.x] = cuda.blockIdx.x  # <- RACE


EXPECT = [finding("race", "RACE", space="global", hazard="WAW", scope="inter-block")]


def launch():
    data = cuda.to_device(np.zeros(THREADS * BLOCKS, np.int32))
    k[BLOCKS, THREADS](data)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
