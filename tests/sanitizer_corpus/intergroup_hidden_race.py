"""Every block reads data[0] while thread 0 of block 1 overwrites it: the simulator runs block 0 first, so
block 0 always sees the old value; on a GPU the blocks run together."""
# Ported from: jrprice/Oclgrind tests/kernels/data-race/intergroup_hidden_race.cl (one writing thread)
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32
BLOCKS = 2


@cuda.jit
def hidden_race(output, data):
    output[cuda.grid(1)] = data[0]  # <- READ
    if cuda.blockIdx.x == 1 and cuda.threadIdx.x == 0:
        data[0] = 1  # <- WRITE


EXPECT = [finding("race", "READ", "WRITE", space="global")]


def launch():
    output = cuda.to_device(np.zeros(THREADS * BLOCKS, np.int32))
    hidden_race[BLOCKS, THREADS](output, cuda.to_device(np.zeros(1, np.int32)))
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
