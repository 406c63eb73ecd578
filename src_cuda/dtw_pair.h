// Per-pair weighted-DTW dynamic programme, backtracking and path encoding.
//
// One header for host and device: the CPU backend and the CUDA backend both run exactly
// this code (one (sample, class) pair per thread), so the CPU tests check the GPU logic.
// Semantics, tie rules and the path encoding are fixed by docs/DESIGN.md section 1.
#pragma once

#include <cstdint>
#include <type_traits>

#include "dtw_batch.h"  // SKTDTW_HD

namespace sktdtw {

// The one summation rule of a cell's cost, sum_f w_f |c_f - x_f|: feature by feature in
// order, each term one fused multiply-add where the instruction set has FMA (CUDA always;
// on the CPU, -ffp-contract=fast fuses the vector expression below exactly as it fuses the
// same expression in the cost matrix). The CUDA cost kernel and the CPU cost matrix up to
// kSequentialFeatures features (cpu_kernels.h) add in this order, and the path primitives
// add a path's cells with it, so a path's cost under the parameters that chose it is the
// DP's distance bit for bit.
// Computes N cells of one centroid row (c, w) at once, out[n] for the sample row x[n]:
// independent chains in lockstep. On the CPU they are the lanes of one vector, written as
// the cost matrix writes its lanes: scalar code would be auto-vectorised into multiplies
// and adds that are no longer fused.
template <int N, class S>
SKTDTW_HD_INLINE void cell_costs(const S* c, const S* w, const S* const* x, int64_t F, S* out) {
#if defined(__CUDA_ARCH__)
  for (int n = 0; n < N; ++n) {
    S acc = S(0);
    for (int64_t f = 0; f < F; ++f) acc = fma(w[f], fabs(c[f] - x[n][f]), acc);
    out[n] = acc;
  }
#else
  typedef S Lanes __attribute__((vector_size(N * sizeof(S))));
  typedef typename std::conditional<sizeof(S) == 4, int32_t, int64_t>::type I;
  typedef I Bits __attribute__((vector_size(N * sizeof(S))));
  constexpr I magnitude = ~(I(1) << (8 * sizeof(S) - 1));  // |d| clears the sign bit
  Lanes acc = {};
  for (int64_t f = 0; f < F; ++f) {
    Lanes xf;
    for (int n = 0; n < N; ++n) xf[n] = x[n][f];
    const Lanes cf = Lanes{} + c[f], wf = Lanes{} + w[f];
    acc += wf * (Lanes)((Bits)(cf - xf) & magnitude);
  }
  for (int n = 0; n < N; ++n) out[n] = acc[n];
#endif
}

// The smaller of a and b, as a select the compiler makes branch-free: on random data a
// branch here would be mispredicted about half the time.
template <class S> SKTDTW_HD S min_of(S a, S b) { return b < a ? b : a; }

// Rows of the DP accumulated in one pass over the columns: each row's chain of dependent
// cells (cell j needs cell j - 1) runs beside the others, which hides the latency of its
// min and add, and a cell's left and upper neighbours stay in registers, not behind a
// store and a reload. (Loops over r have a constant count: compilers unroll them.)
constexpr int kDtwRowsPerPass = 8;

// Accumulates the R rows starting at `row` (row stride `ld`), given the finished row
// above them: D[i][j] = cost[i][j] + min(D[i-1][j], D[i][j-1]) (with `Diagonal`, also
// D[i-1][j-1]), cell by cell in the same operations as one row at a time.
template <int R, bool Diagonal, class S>
SKTDTW_HD void dtw_accumulate_rows(S* row, int64_t ld, int64_t T) {
  const S* up = row - ld;
  S left[R];
  S above = up[0];
  for (int r = 0; r < R; ++r) {
    above = row[r * ld] + above;
    row[r * ld] = left[r] = above;
  }
  for (int64_t j = 1; j < T; ++j) {
    above = up[j];
    S above_left = up[j - 1];
    for (int r = 0; r < R; ++r) {
      const S prior = Diagonal ? min_of(above, above_left) : above;
      const S cell = row[r * ld + j] + min_of(prior, left[r]);
      row[r * ld + j] = cell;
      above_left = left[r];
      left[r] = above = cell;
    }
  }
}

// Turns the L x T cost block of one pair (row stride `ld`) into the cumulative cost D in
// place and returns D[L-1][T-1]. Moves: up (i-1, j), left (i, j-1), and with `diagonal`
// (i-1, j-1).
template <bool Diagonal, class S>
SKTDTW_HD S dtw_accumulate(S* D, int64_t ld, int64_t L, int64_t T) {
  S left = D[0];
  for (int64_t j = 1; j < T; ++j) D[j] = left = D[j] + left;
  int64_t i = 1;
  for (; i + kDtwRowsPerPass <= L; i += kDtwRowsPerPass) {
    dtw_accumulate_rows<kDtwRowsPerPass, Diagonal>(D + i * ld, ld, T);
  }
  // The last rows in passes of 4, 2 and 1 (L = 8, the paper's, leaves 7).
  if (i + 4 <= L) {
    dtw_accumulate_rows<4, Diagonal>(D + i * ld, ld, T);
    i += 4;
  }
  if (i + 2 <= L) {
    dtw_accumulate_rows<2, Diagonal>(D + i * ld, ld, T);
    i += 2;
  }
  if (i < L) dtw_accumulate_rows<1, Diagonal>(D + i * ld, ld, T);
  return D[(L - 1) * ld + T - 1];
}

// Backtracks from (L-1, T-1) through D and writes the path as L inclusive ranges
// path[2*i] = lo, path[2*i+1] = hi of the sample steps aligned with centroid step i.
// Ties: without diagonal, go left unless up is strictly smaller; with diagonal, go up
// only if strictly smallest, else left if strictly smaller than the diagonal, else diagonal.
template <class S>
SKTDTW_HD void dtw_backtrack(const S* D, int64_t ld, int64_t L, int64_t T, bool diagonal,
                             int32_t* path) {
  int64_t i = L - 1, j = T - 1;
  path[2 * i + 1] = static_cast<int32_t>(j);
  while (i > 0 || j > 0) {
    bool up = j == 0;
    bool diag = false;
    if (i > 0 && j > 0) {
      const S u = D[(i - 1) * ld + j], l = D[i * ld + j - 1];
      if (!diagonal) {
        up = u < l;
      } else {
        const S d = D[(i - 1) * ld + j - 1];
        up = u < l && u < d;
        diag = !up && !(l < d);
      }
    }
    if (up || diag) {  // leaving row i at column j
      path[2 * i] = static_cast<int32_t>(j);
      path[2 * (i - 1) + 1] = static_cast<int32_t>(diag ? j - 1 : j);
      --i;
      if (diag) --j;
    } else {
      --j;
    }
  }
  path[0] = 0;
}

// The whole per-pair step: DP over the pair's cost block, distance and encoded path (not
// traced when `path` is null: distances only).
template <class S>
SKTDTW_HD void dtw_pair(S* cost, int64_t ld, int64_t L, int64_t T, bool diagonal, S* dist,
                        int32_t* path) {
  *dist = diagonal ? dtw_accumulate<true>(cost, ld, L, T)
                   : dtw_accumulate<false>(cost, ld, L, T);
  if (path) dtw_backtrack(cost, ld, L, T, diagonal, path);
}

}  // namespace sktdtw
