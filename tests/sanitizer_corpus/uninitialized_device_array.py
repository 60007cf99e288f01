"""A kernel reads an input allocated with cuda.device_array and never written by the host or a kernel."""
# Ported from: jrprice/Oclgrind tests/kernels/uninitialized/uninitialized_global_buffer.cl
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32


@cuda.jit
def broadcast_first(output, input_):
    output[cuda.grid(1)] = input_[0]  # <- READ


EXPECT = [finding("uninitialized_read", "READ", space="global")]


def launch():
    output = cuda.to_device(np.zeros(THREADS, np.float32))
    broadcast_first[1, THREADS](output, cuda.device_array(1, np.float32))
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
