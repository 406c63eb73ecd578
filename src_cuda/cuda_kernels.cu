// CUDA kernels of the weighted-DTW op (docs/DESIGN.md sections 1-3).
//
// path:      cost[(k,i), n] = sum_f W[k,i,f] |C[k,i,f] - X[n,f]| as a tiled "L1-GEMM"
//            (64 x 64 output tile per block, 4 x 4 register tile per thread, feature chunks
//            staged in shared memory), then the per-pair DP + backtrack of dtw_pair.h in
//            place on that matrix, one thread per (sample, class) pair.
// path_cost: one warp per pair, lanes over the path's cells, added in path order.
// path_grad: every output element has exactly one owner thread that sums its terms in a
//            fixed order (dC/dW: over the batch in order; dX: over (k, i) in order), so
//            there are no atomics and results are bit-for-bit reproducible.
//
// Path ranges read from memory are clamped to their sample, so even a corrupt path never
// reads out of bounds (the Python wrapper validates them and raises before that).
#include "cuda_kernels.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "dtw_pair.h"

namespace sktdtw::cuda {
namespace {

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("sktdtw CUDA backend: ") + what + " failed: " +
                             cudaGetErrorString(err));
}

cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// gridDim.y is limited to 65535 blocks; name the size that overflows it.
unsigned grid_y(int64_t blocks, const char* what) {
  if (blocks > 65535)
    throw std::invalid_argument(std::string("sktdtw CUDA backend: ") + what +
                                " is too large for one launch");
  return static_cast<unsigned>(blocks);
}

template <class S> __device__ __forceinline__ S sign_of(S d) {
  return static_cast<S>((d > S(0)) - (d < S(0)));
}

// The range [lo, hi] of centroid step i of one pair, clamped to the sample's T steps.
__device__ __forceinline__ void path_range(const int32_t* pair_path, int64_t i, int64_t T,
                                           int64_t& lo, int64_t& hi) {
  lo = max(int64_t(pair_path[2 * i]), int64_t(0));
  hi = min(int64_t(pair_path[2 * i + 1]), T - 1);
}

// ---------------------------------------------------------------------------------------
// Cost matrix ("L1-GEMM").

constexpr int kTile = 64;          // output rows and columns per block
constexpr int kMicro = 4;          // output rows and columns per thread
constexpr int kCostThreads = 256;  // (kTile / kMicro)^2
constexpr int kTileLd = kTile + 4;  // shared row stride: keeps 16-byte alignment for the
                                    // vector reads and makes the transposing stores
                                    // conflict-free for the load pattern below
// Features per shared-memory stage: 3 tiles of kChunk x kTileLd stay at 26 KB either way.
template <class S> constexpr int kChunk = sizeof(S) == 4 ? 32 : 16;

static_assert((kTile / kMicro) * (kTile / kMicro) == kCostThreads, "one micro-tile per thread");

// Four consecutive shared-memory values (16-byte aligned for float).
__device__ __forceinline__ void load4(const float* p, float (&v)[4]) {
  const float4 q = *reinterpret_cast<const float4*>(p);
  v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
__device__ __forceinline__ void load4(const double* p, double (&v)[4]) {
  const double2 a = reinterpret_cast<const double2*>(p)[0];
  const double2 b = reinterpret_cast<const double2*>(p)[1];
  v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
}

// out[r * N + n] for r < R (rows of C, W), n < N (rows of X). Block (x, y) owns the tile of
// columns [64x, 64x + 64) and rows [64y, 64y + 64). Out-of-range rows, columns and features
// are staged as zeros: a zero weight adds nothing, and those outputs are never stored.
template <class S>
__global__ void __launch_bounds__(kCostThreads)
cost_kernel(const S* __restrict__ X, const S* __restrict__ C, const S* __restrict__ W,
            int64_t R, int64_t N, int64_t F, S* __restrict__ out) {
  constexpr int BK = kChunk<S>;
  __shared__ __align__(16) S c_s[BK][kTileLd];
  __shared__ __align__(16) S w_s[BK][kTileLd];
  __shared__ __align__(16) S x_s[BK][kTileLd];

  const int t = threadIdx.x;
  const int64_t row0 = int64_t(blockIdx.y) * kTile, col0 = int64_t(blockIdx.x) * kTile;
  // Staging pattern: a warp reads 8 consecutive features of 4 rows per instruction
  // (32-byte segments) and stores them transposed without bank conflicts.
  const int stage_f = t % 8, stage_r = t / 8;  // stage_r in [0, 32)
  // Compute pattern: rows ty*4.., columns tx*4..
  const int tx = t % (kTile / kMicro), ty = t / (kTile / kMicro);

  S acc[kMicro][kMicro];
#pragma unroll
  for (int a = 0; a < kMicro; ++a)
#pragma unroll
    for (int b = 0; b < kMicro; ++b) acc[a][b] = S(0);

  for (int64_t f0 = 0; f0 < F; f0 += BK) {
#pragma unroll
    for (int q = 0; q < BK / 8; ++q) {
      const int ff = stage_f + 8 * q;
      const int64_t f = f0 + ff;
      const bool f_in = f < F;
#pragma unroll
      for (int p = 0; p < kTile / 32; ++p) {
        const int rr = stage_r + 32 * p;
        const int64_t r = row0 + rr, n = col0 + rr;
        const bool r_in = f_in && r < R, n_in = f_in && n < N;
        c_s[ff][rr] = r_in ? C[r * F + f] : S(0);
        w_s[ff][rr] = r_in ? W[r * F + f] : S(0);
        x_s[ff][rr] = n_in ? X[n * F + f] : S(0);
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      S c[kMicro], w[kMicro], x[kMicro];
      load4(&c_s[kk][ty * kMicro], c);
      load4(&w_s[kk][ty * kMicro], w);
      load4(&x_s[kk][tx * kMicro], x);
#pragma unroll
      for (int a = 0; a < kMicro; ++a)
#pragma unroll
        for (int b = 0; b < kMicro; ++b) acc[a][b] = fma(w[a], fabs(c[a] - x[b]), acc[a][b]);
    }
    __syncthreads();  // the next stage overwrites the tiles
  }

#pragma unroll
  for (int a = 0; a < kMicro; ++a) {
    const int64_t r = row0 + ty * kMicro + a;
    if (r >= R) break;
#pragma unroll
    for (int b = 0; b < kMicro; ++b) {
      const int64_t n = col0 + tx * kMicro + b;
      if (n < N) out[r * N + n] = acc[a][b];
    }
  }
}

// ---------------------------------------------------------------------------------------
// DP + backtrack: one thread per pair, in place on the cost matrix (the CPU layout). The
// cost matrix holds a group of n_group classes; dist and path point at the group's first
// class, pairs (b, k) at b * K + k.

template <class S>
__global__ void dtw_pairs_kernel(S* __restrict__ cost, const int64_t* __restrict__ offsets,
                                 int64_t row_base, int64_t N, int64_t B, int64_t K,
                                 int64_t n_group, int64_t L, bool diagonal, S* __restrict__ dist,
                                 int32_t* __restrict__ path) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= B * n_group) return;
  // Samples vary fastest so that neighbouring threads sweep neighbouring columns of the
  // same cost rows (shared cache lines).
  const int64_t k = q / B, b = q % B, pair = b * K + k;
  const int64_t start = offsets[b] - row_base, T = offsets[b + 1] - offsets[b];
  dtw_pair(cost + k * L * N + start, N, L, T, diagonal, dist + pair,
           path ? path + pair * L * 2 : nullptr);
}

// ---------------------------------------------------------------------------------------
// path_cost: one warp per pair. The lanes take consecutive cells of a range, each adding its
// features in cell_costs' order (the cost kernel's), and the cells are then added in path
// order, as the DP adds them: a path's cost under the parameters that chose it is the
// DP's distance, bit for bit.

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;

template <class S>
__global__ void __launch_bounds__(kWarp * kWarpsPerBlock)
path_cost_kernel(const S* __restrict__ X, const int64_t* __restrict__ offsets, int64_t row_base,
                 int64_t B, int64_t F, const S* __restrict__ C, const S* __restrict__ W,
                 int64_t K, int64_t L, const int32_t* __restrict__ path, S* __restrict__ dist) {
  const int64_t pair = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (pair >= B * K) return;  // uniform across the warp: the shuffles below stay full
  const int64_t b = pair / K, k = pair % K;
  const int64_t T = offsets[b + 1] - offsets[b];
  const S* xb = X + (offsets[b] - row_base) * F;
  const int32_t* pair_path = path + pair * L * 2;
  S total = S(0);
  for (int64_t i = 0; i < L; ++i) {
    int64_t lo, hi;
    path_range(pair_path, i, T, lo, hi);
    const S* c = C + (k * L + i) * F;
    const S* w = W + (k * L + i) * F;
    for (int64_t j0 = lo; j0 <= hi; j0 += kWarp) {
      const S* x = xb + min(j0 + lane, hi) * F;
      S cell;
      cell_costs<1>(c, w, &x, F, &cell);
      const int n = static_cast<int>(min(int64_t(kWarp), hi - j0 + 1));
      for (int l = 0; l < n; ++l) total += __shfl_sync(0xffffffffu, cell, l);
    }
  }
  if (lane == 0) dist[pair] = total;
}

// ---------------------------------------------------------------------------------------
// path_grad, parameters: thread (lane, warp) of block (x, y) owns feature 32x + lane of the
// rows (k, i) = 32y + warp + 8m, m < kGradRows, and loops over the batch in order.

constexpr int kGradRows = 4;                                // rows per thread
constexpr int kGradBlockRows = kWarpsPerBlock * kGradRows;  // rows per block

template <class S>
__global__ void __launch_bounds__(kWarp * kWarpsPerBlock)
grad_params_kernel(const S* __restrict__ X, const int64_t* __restrict__ offsets, int64_t row_base,
                   int64_t B, int64_t F, const S* __restrict__ C, const S* __restrict__ W,
                   int64_t K, int64_t L, const int32_t* __restrict__ path,
                   const S* __restrict__ G, S* __restrict__ dC, S* __restrict__ dW) {
  const int64_t f = int64_t(blockIdx.x) * kWarp + threadIdx.x;
  if (f >= F) return;  // no block-level synchronisation below
  const int64_t R = K * L;
  int64_t row[kGradRows], cls[kGradRows];
  S c[kGradRows], acc_abs[kGradRows], acc_sign[kGradRows];
#pragma unroll
  for (int m = 0; m < kGradRows; ++m) {
    row[m] = int64_t(blockIdx.y) * kGradBlockRows + threadIdx.y + kWarpsPerBlock * m;
    cls[m] = row[m] / L;
    c[m] = row[m] < R ? C[row[m] * F + f] : S(0);
    acc_abs[m] = acc_sign[m] = S(0);
  }
  for (int64_t b = 0; b < B; ++b) {
    const int64_t T = offsets[b + 1] - offsets[b];
    const S* xb = X + (offsets[b] - row_base) * F + f;
#pragma unroll
    for (int m = 0; m < kGradRows; ++m) {
      if (row[m] >= R) continue;
      int64_t lo, hi;
      path_range(path + b * R * 2, row[m], T, lo, hi);  // (b*K + k)*L + i == b*R + row
      S s_abs = S(0), s_sign = S(0);
      for (int64_t j = lo; j <= hi; ++j) {
        const S d = c[m] - xb[j * F];
        s_abs += fabs(d);
        s_sign += sign_of(d);
      }
      const S g = G[b * K + cls[m]];
      acc_abs[m] += g * s_abs;
      acc_sign[m] += g * s_sign;
    }
  }
#pragma unroll
  for (int m = 0; m < kGradRows; ++m) {
    if (row[m] >= R) continue;
    dW[row[m] * F + f] = acc_abs[m];
    dC[row[m] * F + f] = W[row[m] * F + f] * acc_sign[m];
  }
}

// ---------------------------------------------------------------------------------------
// path_grad, values. First an inverse index: for every class k and sample row n, the first
// and last centroid step whose range holds n (index[2*(k*N + n)] = first, [+1] = last;
// first > last when none does). Then thread (lane, warp) of block (x, y) owns dX[n, f] for
// n = 8x + warp, f = 32y + lane and sums over (k, i) in order, visiting only the steps in
// the index's run (a monotone path makes that run exactly the steps holding n).

template <class S>
__global__ void path_index_kernel(const int64_t* __restrict__ offsets, int64_t row_base,
                                  int64_t N, int64_t B, int64_t K, int64_t L,
                                  const int32_t* __restrict__ path, int32_t* __restrict__ index) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= B * K) return;
  const int64_t k = q / B, b = q % B, pair = b * K + k;
  const int64_t start = offsets[b] - row_base, T = offsets[b + 1] - offsets[b];
  int32_t* run = index + 2 * (k * N + start);
  for (int64_t j = 0; j < T; ++j) {
    run[2 * j] = static_cast<int32_t>(L);
    run[2 * j + 1] = -1;
  }
  for (int64_t i = 0; i < L; ++i) {
    int64_t lo, hi;
    path_range(path + pair * L * 2, i, T, lo, hi);
    for (int64_t j = lo; j <= hi; ++j) {
      run[2 * j] = min(run[2 * j], static_cast<int32_t>(i));
      run[2 * j + 1] = max(run[2 * j + 1], static_cast<int32_t>(i));
    }
  }
}

template <class S>
__global__ void __launch_bounds__(kWarp * kWarpsPerBlock)
grad_values_kernel(const S* __restrict__ X, const int64_t* __restrict__ offsets, int64_t row_base,
                   int64_t N, int64_t B, int64_t F, const S* __restrict__ C,
                   const S* __restrict__ W, int64_t K, int64_t L,
                   const int32_t* __restrict__ path, const S* __restrict__ G,
                   const int32_t* __restrict__ index, S* __restrict__ dX) {
  const int64_t n = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  const int64_t f = int64_t(blockIdx.y) * kWarp + threadIdx.x;
  if (n >= N || f >= F) return;
  // The sample holding row n: the last b with offsets[b] <= n + row_base.
  int64_t lo_b = 0, hi_b = B - 1;
  while (lo_b < hi_b) {
    const int64_t mid = (lo_b + hi_b + 1) / 2;
    if (offsets[mid] - row_base <= n) lo_b = mid; else hi_b = mid - 1;
  }
  const int64_t b = lo_b, j = n + row_base - offsets[b];
  const S x = X[n * F + f];
  S acc = S(0);
  for (int64_t k = 0; k < K; ++k) {
    const int32_t first = index[2 * (k * N + n)], last = index[2 * (k * N + n) + 1];
    if (first > last) continue;
    const S g = G[b * K + k];
    const int32_t* pair_path = path + (b * K + k) * L * 2;
    for (int64_t i = first; i <= last; ++i) {
      if (pair_path[2 * i] > j || pair_path[2 * i + 1] < j) continue;  // only for odd paths
      const int64_t r = (k * L + i) * F + f;
      acc -= g * W[r] * sign_of(C[r] - x);
    }
  }
  dX[n * F + f] = acc;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Launchers.

template <class S>
void path(const Batch<S>& x, const Params<S>& p, bool diagonal, S* workspace,
          int64_t workspace_size, S* dist, int32_t* out_path, std::uintptr_t stream) {
  const int64_t K = p.n_classes, L = p.length, N = x.n_rows, F = x.n_features;
  const int64_t B = x.n_samples;
  if (B < 1 || N < 1) return;
  const cudaStream_t s = as_stream(stream);
  for_each_class_group(K, L, N, workspace_size, [&](int64_t k0, int64_t n_group) {
    const int64_t R = n_group * L;
    const dim3 cost_grid(static_cast<unsigned>(ceil_div(N, kTile)),
                         grid_y(ceil_div(R, kTile), "n_classes * centroid_length"));
    cost_kernel<S><<<cost_grid, kCostThreads, 0, s>>>(
        x.values, p.centroids + k0 * L * F, p.weights + k0 * L * F, R, N, F, workspace);
    check_launch("the cost-matrix kernel");
    constexpr int threads = 128;
    dtw_pairs_kernel<S><<<static_cast<unsigned>(ceil_div(B * n_group, threads)), threads, 0, s>>>(
        workspace, x.offsets, x.row_base, N, B, K, n_group, L, diagonal, dist + k0,
        out_path ? out_path + k0 * L * 2 : nullptr);
    check_launch("the DTW kernel");
  });
}

template <class S>
void path_cost(const Batch<S>& x, const Params<S>& p, const int32_t* in_path, S* dist,
               std::uintptr_t stream) {
  const int64_t K = p.n_classes, B = x.n_samples;
  if (B < 1) return;
  path_cost_kernel<S><<<static_cast<unsigned>(ceil_div(B * K, kWarpsPerBlock)),
                        kWarp * kWarpsPerBlock, 0, as_stream(stream)>>>(
      x.values, x.offsets, x.row_base, B, x.n_features, p.centroids, p.weights, K, p.length,
      in_path, dist);
  check_launch("the path-cost kernel");
}

template <class S>
void path_grad(const Batch<S>& x, const Params<S>& p, const int32_t* in_path, const S* G, S* dC,
               S* dW, S* dX, int32_t* index, std::uintptr_t stream) {
  const int64_t K = p.n_classes, L = p.length, R = K * L, N = x.n_rows, F = x.n_features;
  const int64_t B = x.n_samples;
  if (B < 1) return;
  const cudaStream_t s = as_stream(stream);
  const dim3 block(kWarp, kWarpsPerBlock);
  if (dC && dW) {
    const dim3 grid(static_cast<unsigned>(ceil_div(F, kWarp)),
                    grid_y(ceil_div(R, kGradBlockRows), "n_classes * centroid_length"));
    grad_params_kernel<S><<<grid, block, 0, s>>>(x.values, x.offsets, x.row_base, B, F,
                                                 p.centroids, p.weights, K, L, in_path, G, dC, dW);
    check_launch("the parameter-gradient kernel");
  }
  if (dX) {
    if (!index) throw std::invalid_argument("sktdtw CUDA backend: dX needs an index workspace");
    constexpr int threads = 128;
    path_index_kernel<S><<<static_cast<unsigned>(ceil_div(B * K, threads)), threads, 0, s>>>(
        x.offsets, x.row_base, N, B, K, L, in_path, index);
    check_launch("the path-index kernel");
    const dim3 grid(static_cast<unsigned>(ceil_div(N, kWarpsPerBlock)),
                    grid_y(ceil_div(F, kWarp), "n_features"));
    grad_values_kernel<S><<<grid, block, 0, s>>>(x.values, x.offsets, x.row_base, N, B, F,
                                                 p.centroids, p.weights, K, L, in_path, G, index,
                                                 dX);
    check_launch("the values-gradient kernel");
  }
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the error so that it does not surface in a later check
    return 0;
  }
  return n;
}

#define SKTDTW_CUDA_INSTANTIATE(S)                                                             \
  template void path<S>(const Batch<S>&, const Params<S>&, bool, S*, int64_t, S*, int32_t*,   \
                        std::uintptr_t);                                                      \
  template void path_cost<S>(const Batch<S>&, const Params<S>&, const int32_t*, S*,           \
                             std::uintptr_t);                                                 \
  template void path_grad<S>(const Batch<S>&, const Params<S>&, const int32_t*, const S*, S*, \
                             S*, S*, int32_t*, std::uintptr_t);
SKTDTW_CUDA_INSTANTIATE(float)
SKTDTW_CUDA_INSTANTIATE(double)

}  // namespace sktdtw::cuda
