"""Fixed twin of intergroup_hidden_race: the new value goes to a separate word that nobody reads."""
# Ported from: jrprice/Oclgrind tests/kernels/data-race/intergroup_hidden_race.cl (write elsewhere)
import numpy as np
from numba import cuda

THREADS = 32
BLOCKS = 2


@cuda.jit
def hidden_race(output, data):
    output[cuda.grid(1)] = data[0]
    if cuda.blockIdx.x == 1 and cuda.threadIdx.x == 0:
        data[1] = 1


EXPECT = []


def launch():
    output = cuda.to_device(np.zeros(THREADS * BLOCKS, np.int32))
    hidden_race[BLOCKS, THREADS](output, cuda.to_device(np.zeros(2, np.int32)))
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
