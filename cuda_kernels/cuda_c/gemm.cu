// tilegrad's GEMM ladder in CUDA C (issue #19), compiled at run time by NVRTC (cuda_kernels/gemm_cuda_c.py).
// C = act(alpha * op(A) @ op(B) + beta * C + bias), row-major, float32: the same contract, runtime flags and
// epilogue as the numba kernels in gemm.py (beta == 0: C is never read).
//
// gemm_cuda_c_double_buffered: the numba rung gemm_double_buffered written in CUDA C, line for line the same
//   algorithm: 128x128x8 block tiles, 16x16 threads, 8x8 contiguous outputs per thread, A stored k-major
//   (transposed) in 16-byte-aligned shared rows of 132 floats, two shared buffers, one barrier per k-step. What
//   differs is only the compiler's input: 32-bit indices, float4 shared loads written out, and float4 global
//   loads where alignment is known at run time (the numba version cannot express either).
// gemm_wmma_tf32: tensor cores through nvcuda::wmma, m16n16k8 TF32 fragments (sm_80+); 64x64x8 block tiles,
//   4 warps each owning 32x32 (2x2 fragments); operands rounded to TF32 (10 mantissa bits) on their way into
//   shared memory, float32 accumulation. Relative error against float64 ~ 2^-11 * sqrt(K) per element.
// mma.h needs crt/mma.h (pip's nvidia-cuda-crt wheel, in the cuda extra, or a system CUDA): without it only the
// SIMT twin is built.
#if __has_include(<crt/mma.h>)
#include <mma.h>
#define TILEGRAD_HAVE_WMMA 1
#endif

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_TANH 2

__device__ __forceinline__ void store_epilogue(float* C, int N, int i, int j, float acc, float alpha, float beta,
                                               const float* bias, int has_bias, int act) {
    float v = alpha * acc;
    if (beta != 0.0f) v += beta * C[i * N + j];
    if (has_bias) v += bias[j];
    if (act == ACT_RELU) v = fmaxf(v, 0.0f);
    else if (act == ACT_TANH) v = tanhf(v);
    C[i * N + j] = v;
}

#define BM 128
#define BN 128
#define BK 8
#define TM 8
#define TN 8
#define COLS (BM + 4)  // 16-byte padding: rows stay 16-byte aligned for LDS.128

// 4 consecutive floats of this thread's share of the A and B tiles (as _ladder_stage in gemm.py).
__device__ __forceinline__ void stage_tiles(float* st, const float* __restrict__ A, const float* __restrict__ B,
                                            int M, int N, int K, int trans_a, int trans_b, int row0, int col0,
                                            int k0, int tid, int vec_a, int vec_b) {
    if (trans_a) {  // A is (K, M)
        int gk = k0 + tid / 32, gr = row0 + (tid % 32) * 4;
        if (vec_a && gk < K && gr + 3 < M) {
            float4 v = *reinterpret_cast<const float4*>(A + (size_t)gk * M + gr);
            st[0] = v.x; st[1] = v.y; st[2] = v.z; st[3] = v.w;
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) st[q] = (gk < K && gr + q < M) ? A[(size_t)gk * M + gr + q] : 0.0f;
        }
    } else {  // A is (M, K)
        int gr = row0 + tid / 2, gk = k0 + (tid % 2) * 4;
        if (vec_a && gr < M && gk + 3 < K) {
            float4 v = *reinterpret_cast<const float4*>(A + (size_t)gr * K + gk);
            st[0] = v.x; st[1] = v.y; st[2] = v.z; st[3] = v.w;
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) st[q] = (gr < M && gk + q < K) ? A[(size_t)gr * K + gk + q] : 0.0f;
        }
    }
    if (trans_b) {  // B is (N, K)
        int gc = col0 + tid / 2, gk = k0 + (tid % 2) * 4;
        if (vec_b && gc < N && gk + 3 < K) {
            float4 v = *reinterpret_cast<const float4*>(B + (size_t)gc * K + gk);
            st[4] = v.x; st[5] = v.y; st[6] = v.z; st[7] = v.w;
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) st[4 + q] = (gc < N && gk + q < K) ? B[(size_t)gc * K + gk + q] : 0.0f;
        }
    } else {  // B is (K, N)
        int gk = k0 + tid / 32, gc = col0 + (tid % 32) * 4;
        if (vec_b && gk < K && gc + 3 < N) {
            float4 v = *reinterpret_cast<const float4*>(B + (size_t)gk * N + gc);
            st[4] = v.x; st[5] = v.y; st[6] = v.z; st[7] = v.w;
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) st[4 + q] = (gk < K && gc + q < N) ? B[(size_t)gk * N + gc + q] : 0.0f;
        }
    }
}

__device__ __forceinline__ void store_tiles(const float* st, float (*ta)[COLS], float (*tb)[COLS], int trans_a,
                                            int trans_b, int tid) {
    if (trans_a) {
        int k = tid / 32, r = (tid % 32) * 4;
        *reinterpret_cast<float4*>(&ta[k][r]) = make_float4(st[0], st[1], st[2], st[3]);
    } else {
        int r = tid / 2, k = (tid % 2) * 4;
#pragma unroll
        for (int q = 0; q < 4; ++q) ta[k + q][r] = st[q];
    }
    if (trans_b) {
        int c = tid / 2, k = (tid % 2) * 4;
#pragma unroll
        for (int q = 0; q < 4; ++q) tb[k + q][c] = st[4 + q];
    } else {
        int k = tid / 32, c = (tid % 32) * 4;
        *reinterpret_cast<float4*>(&tb[k][c]) = make_float4(st[4], st[5], st[6], st[7]);
    }
}

extern "C" __global__ void __launch_bounds__(256)
gemm_cuda_c_double_buffered(float* C, const float* __restrict__ A, const float* __restrict__ B, int M, int N, int K,
                            float alpha, float beta, int trans_a, int trans_b, const float* __restrict__ bias,
                            int has_bias, int act) {
    __shared__ __align__(16) float tiles_a[2][BK][COLS];
    __shared__ __align__(16) float tiles_b[2][BK][COLS];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    // float4 global loads need 16-byte-aligned rows: a row length that is a multiple of 4 floats
    const int vec_a = ((trans_a ? M : K) % 4 == 0) && ((size_t)A % 16 == 0);
    const int vec_b = ((trans_b ? K : N) % 4 == 0) && ((size_t)B % 16 == 0);
    float acc[TM][TN], st[8], af[TM], bf[TN];
    for (int tile_row = blockIdx.y; tile_row < (M + BM - 1) / BM; tile_row += gridDim.y) {
        for (int tile_col = blockIdx.x; tile_col < (N + BN - 1) / BN; tile_col += gridDim.x) {
            const int row0 = tile_row * BM, col0 = tile_col * BN;
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
            stage_tiles(st, A, B, M, N, K, trans_a, trans_b, row0, col0, 0, tid, vec_a, vec_b);
            store_tiles(st, tiles_a[0], tiles_b[0], trans_a, trans_b, tid);
            __syncthreads();
            int cur = 0;
            for (int k0 = 0; k0 < K; k0 += BK) {
                const bool more = k0 + BK < K;
                if (more) stage_tiles(st, A, B, M, N, K, trans_a, trans_b, row0, col0, k0 + BK, tid, vec_a, vec_b);
#pragma unroll
                for (int k = 0; k < BK; ++k) {
                    const float4* pa = reinterpret_cast<const float4*>(&tiles_a[cur][k][ty * TM]);
                    const float4* pb = reinterpret_cast<const float4*>(&tiles_b[cur][k][tx * TN]);
                    float4 a0 = pa[0], a1 = pa[1], b0 = pb[0], b1 = pb[1];
                    af[0] = a0.x; af[1] = a0.y; af[2] = a0.z; af[3] = a0.w;
                    af[4] = a1.x; af[5] = a1.y; af[6] = a1.z; af[7] = a1.w;
                    bf[0] = b0.x; bf[1] = b0.y; bf[2] = b0.z; bf[3] = b0.w;
                    bf[4] = b1.x; bf[5] = b1.y; bf[6] = b1.z; bf[7] = b1.w;
#pragma unroll
                    for (int i = 0; i < TM; ++i)
#pragma unroll
                        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(af[i], bf[j], acc[i][j]);
                }
                if (more) store_tiles(st, tiles_a[1 - cur], tiles_b[1 - cur], trans_a, trans_b, tid);
                __syncthreads();
                cur = 1 - cur;
            }
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                const int gi = row0 + ty * TM + i;
                if (gi < M) {
#pragma unroll
                    for (int j = 0; j < TN; ++j) {
                        const int gj = col0 + tx * TN + j;
                        if (gj < N) store_epilogue(C, N, gi, gj, acc[i][j], alpha, beta, bias, has_bias, act);
                    }
                }
            }
        }
    }
}

// TF32 wmma fragments need sm_80: an older target (sm_75, the T4) builds the SIMT twin alone (gemm_cuda_c.MIN_CC)
#if defined(TILEGRAD_HAVE_WMMA) && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800)
// ---- TF32 tensor cores -------------------------------------------------------------------------------------
#define WBM 64
#define WBN 64
#define WBK 8
#define A_LD (WBK + 4)   // 12 floats: 48-byte rows, every 16-row fragment start 32-byte aligned
#define B_LD (WBN + 8)   // 72 floats
#define C_LD (WBN + 4)   // 68 floats

using namespace nvcuda;

extern "C" __global__ void __launch_bounds__(128)
gemm_wmma_tf32(float* C, const float* __restrict__ A, const float* __restrict__ B, int M, int N, int K, float alpha,
               float beta, int trans_a, int trans_b, const float* __restrict__ bias, int has_bias, int act) {
    __shared__ __align__(32) float sa[WBM][A_LD];   // sa[row][k]
    __shared__ __align__(32) float sb[WBK][B_LD];   // sb[k][col]
    __shared__ __align__(32) float sc[WBM][C_LD];
    const int tid = threadIdx.x, warp = tid / 32;
    const int wr = (warp / 2) * 32, wc = (warp % 2) * 32;  // this warp's 32x32 of the 64x64 tile
    for (int tile_row = blockIdx.y; tile_row < (M + WBM - 1) / WBM; tile_row += gridDim.y) {
        for (int tile_col = blockIdx.x; tile_col < (N + WBN - 1) / WBN; tile_col += gridDim.x) {
            const int row0 = tile_row * WBM, col0 = tile_col * WBN;
            wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2][2];
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
            for (int k0 = 0; k0 < K; k0 += WBK) {
                for (int e = tid; e < WBM * WBK; e += 128) {  // 512 floats of A, 4 per thread
                    int r, k;
                    if (trans_a) { r = e % WBM; k = e / WBM; } else { k = e % WBK; r = e / WBK; }
                    const int gr = row0 + r, gk = k0 + k;
                    float v = 0.0f;
                    if (gr < M && gk < K) v = trans_a ? A[(size_t)gk * M + gr] : A[(size_t)gr * K + gk];
                    sa[r][k] = wmma::__float_to_tf32(v);
                }
                for (int e = tid; e < WBK * WBN; e += 128) {
                    int c, k;
                    if (trans_b) { k = e % WBK; c = e / WBK; } else { c = e % WBN; k = e / WBN; }
                    const int gc = col0 + c, gk = k0 + k;
                    float v = 0.0f;
                    if (gc < N && gk < K) v = trans_b ? B[(size_t)gc * K + gk] : B[(size_t)gk * N + gc];
                    sb[k][c] = wmma::__float_to_tf32(v);
                }
                __syncthreads();
                wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa[2];
                wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[2];
#pragma unroll
                for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &sa[wr + i * 16][0], A_LD);
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &sb[0][wc + j * 16], B_LD);
#pragma unroll
                for (int i = 0; i < 2; ++i)
#pragma unroll
                    for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
                __syncthreads();
            }
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j)
                    wmma::store_matrix_sync(&sc[wr + i * 16][wc + j * 16], acc[i][j], C_LD, wmma::mem_row_major);
            __syncthreads();
            for (int e = tid; e < WBM * WBN; e += 128) {  // the epilogue, coalesced along rows of C
                const int r = e / WBN, c = e % WBN, gi = row0 + r, gj = col0 + c;
                if (gi < M && gj < N) store_epilogue(C, N, gi, gj, sc[r][c], alpha, beta, bias, has_bias, act);
            }
            __syncthreads();
        }
    }
}
#endif  // TILEGRAD_HAVE_WMMA, sm_80+
