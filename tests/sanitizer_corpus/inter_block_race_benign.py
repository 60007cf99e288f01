"""Two blocks write the same values to the same global words: a same-value race, severity info."""
# Ported from: GKLEE tests/inter_block_race_benign/inter_block_race_benign.cu
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32
BLOCKS = 2


@cuda.jit
def k(data):
    data[cuda.threadIdx.x] = cuda.threadIdx.x  # <- SAME


EXPECT = [finding("race", "SAME", space="global", hazard="WAW", scope="inter-block", severity="info")]


def launch():
    data = cuda.to_device(np.zeros(THREADS * BLOCKS, np.int32))
    k[BLOCKS, THREADS](data)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
