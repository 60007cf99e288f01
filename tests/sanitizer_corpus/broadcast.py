"""Every lane reads the same word: one sector per global request, one wavefront per shared request
(a broadcast is no bank conflict)."""
# Ported from: jrprice/Oclgrind tests/kernels/data-race/broadcast.cl, plus a shared-memory broadcast
import numpy as np
from _corpus_expect import traffic
from numba import cuda, float32

THREADS = 32


@cuda.jit
def broadcast(out, value):
    s = cuda.shared.array(1, float32)
    i = cuda.threadIdx.x
    g = value[0]  # <- GLOBAL
    if i == 0:
        s[0] = g
    cuda.syncthreads()
    out[i] = g + s[0]  # <- SHARED


EXPECT = []
MEMORY = [traffic("GLOBAL", "global", "load", requests=1, sectors=1, sectors_per_request=1.0),
          traffic("SHARED", "shared", "load", requests=1, wavefronts=1, bank_conflicts=0, ways=1)]


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.float32))
    broadcast[1, THREADS](out, cuda.to_device(np.array([42.0], np.float32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
