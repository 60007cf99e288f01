"""One warp loads float32 at strides 1, 2 and 32: 4, 8 and 32 sectors of 32 bytes per request
(32 lanes x 4 bytes = 128 contiguous bytes = 4 sectors; stride 2 spans 256 bytes; stride 32 puts every
lane in a sector of its own)."""
# Ported from: Faial's uncoalesced-access examples (ua-*) and the CUDA Best Practices strided-access kernel
import numpy as np
from _corpus_expect import traffic
from numba import cuda

THREADS = 32


@cuda.jit
def strided(out, x):
    i = cuda.threadIdx.x
    a = x[i]  # <- STRIDE-1
    b = x[2 * i]  # <- STRIDE-2
    c = x[32 * i]  # <- STRIDE-32
    out[i] = a + b + c  # <- STORE


EXPECT = []
MEMORY = [traffic("STRIDE-1", "global", "load", requests=1, sectors=4, sectors_per_request=4.0),
          traffic("STRIDE-2", "global", "load", requests=1, sectors=8, sectors_per_request=8.0),
          traffic("STRIDE-32", "global", "load", requests=1, sectors=32, sectors_per_request=32.0),
          traffic("STORE", "global", "store", requests=1, sectors=4, sectors_per_request=4.0)]


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.float32))
    strided[1, THREADS](out, cuda.to_device(np.arange(32 * THREADS, dtype=np.float32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
