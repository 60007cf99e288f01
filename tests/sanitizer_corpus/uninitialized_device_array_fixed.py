"""Fixed twin of uninitialized_device_array: the input copied from the host."""
# Ported from: jrprice/Oclgrind tests/kernels/uninitialized/uninitialized_global_buffer.cl (input written)
import numpy as np
from numba import cuda

THREADS = 32


@cuda.jit
def broadcast_first(output, input_):
    output[cuda.grid(1)] = input_[0]


EXPECT = []


def launch():
    output = cuda.to_device(np.zeros(THREADS, np.float32))
    broadcast_first[1, THREADS](output, cuda.to_device(np.array([42.0], np.float32)))
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
