// Per-pair weighted-DTW dynamic programme, backtracking and path encoding.
//
// One header for host and device: the CPU backend and the CUDA backend both run exactly
// this code (one (sample, class) pair per thread; on the CPU also a vector of classes per
// thread, a pair per lane), so the CPU tests check the GPU logic.
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
template <class S> SKTDTW_HD_INLINE S min_of(S a, S b) { return b < a ? b : a; }

// The DP runs over a store of cells, `Cells`, so that one recurrence serves a cost matrix
// accumulated in place (CostBlock below, CPU and CUDA) and the CPU's lanes across the
// classes of one sample, where S is a vector of independent pairs (cpu_kernels.cpp; always
// inlined, so that the vector code is compiled for its caller's instruction set):
//   S cost(i, j)             the cost of cell (i, j)
//   S above(i, j)            D[i-1][j], for the first row i of a pass
//   void put(i, j, D, last)  the finished D[i][j]; `last`: the pass's last row
//   void choose(i, j, u, l, d)  D[i-1][j], D[i][j-1], D[i-1][j-1] of cell (i, j), i, j > 0,
//                            at the moment it is computed (what the backtrack compares)

// Rows of the DP accumulated in one pass over the columns: each row's chain of dependent
// cells (cell j needs cell j - 1) runs beside the others, which hides the latency of its
// min and add, and a cell's left and upper neighbours stay in registers, not behind a
// store and a reload. (Loops over r have a constant count: compilers unroll them.)
constexpr int kDtwRowsPerPass = 8;

// Accumulates the R rows from i0 on, given the finished row above them:
// D[i][j] = cost[i][j] + min(D[i-1][j], D[i][j-1]) (with `Diagonal`, also D[i-1][j-1]),
// cell by cell in the same operations as one row at a time.
template <int R, bool Diagonal, class S, class Cells>
SKTDTW_HD_INLINE void dtw_accumulate_rows(Cells& cells, int64_t i0, int64_t T) {
  S left[R];
  S above = cells.above(i0, 0);
  S next_above_left = above;  // D[i0-1][j-1] for the next column
  for (int r = 0; r < R; ++r) {
    above = cells.cost(i0 + r, 0) + above;
    cells.put(i0 + r, 0, above, r == R - 1);
    left[r] = above;
  }
  for (int64_t j = 1; j < T; ++j) {
    above = cells.above(i0, j);
    S above_left = next_above_left;
    next_above_left = above;
    for (int r = 0; r < R; ++r) {
      const S prior = Diagonal ? min_of(above, above_left) : above;
      const S cell = cells.cost(i0 + r, j) + min_of(prior, left[r]);
      cells.choose(i0 + r, j, above, left[r], above_left);
      cells.put(i0 + r, j, cell, r == R - 1);
      above_left = left[r];
      left[r] = above = cell;
    }
  }
}

// The cumulative cost D of an L x T pair over `Cells`. Moves: up (i-1, j), left (i, j-1),
// and with `Diagonal` (i-1, j-1).
template <bool Diagonal, class S, class Cells>
SKTDTW_HD_INLINE void dtw_accumulate(Cells& cells, int64_t L, int64_t T) {
  S left = cells.cost(0, 0);
  cells.put(0, 0, left, true);
  for (int64_t j = 1; j < T; ++j) {
    left = cells.cost(0, j) + left;
    cells.put(0, j, left, true);
  }
  int64_t i = 1;
  for (; i + kDtwRowsPerPass <= L; i += kDtwRowsPerPass) {
    dtw_accumulate_rows<kDtwRowsPerPass, Diagonal, S>(cells, i, T);
  }
  // The last rows in passes of 4, 2 and 1 (L = 8, the paper's, leaves 7).
  if (i + 4 <= L) {
    dtw_accumulate_rows<4, Diagonal, S>(cells, i, T);
    i += 4;
  }
  if (i + 2 <= L) {
    dtw_accumulate_rows<2, Diagonal, S>(cells, i, T);
    i += 2;
  }
  if (i < L) dtw_accumulate_rows<1, Diagonal, S>(cells, i, T);
}

// The backtrack's move out of cell (i, j), i, j > 0, from u = D[i-1][j], l = D[i][j-1] and
// d = D[i-1][j-1]. Ties: without diagonal, go left unless up is strictly smaller; with
// diagonal, go up only if strictly smallest, else left if strictly smaller than the
// diagonal, else diagonal. M is bool, or a vector of lane masks where S is a vector.
template <class S, class M>
SKTDTW_HD_INLINE void dtw_move(S u, S l, S d, bool diagonal, M& up, M& diag) {
  if (!diagonal) {
    up = u < l;
    diag = M{};
  } else {
    up = u < l && u < d;
    diag = !up && !(l < d);
  }
}

// Backtracks from (L-1, T-1), taking each cell's move from `moves(i, j, up, diag)`, and
// writes the path as L inclusive ranges path[2*i] = lo, path[2*i+1] = hi of the sample
// steps aligned with centroid step i.
template <class Moves>
SKTDTW_HD void dtw_backtrack(const Moves& moves, int64_t L, int64_t T, int32_t* path) {
  int64_t i = L - 1, j = T - 1;
  path[2 * i + 1] = static_cast<int32_t>(j);
  while (i > 0 || j > 0) {
    bool up = j == 0;
    bool diag = false;
    if (i > 0 && j > 0) moves(i, j, up, diag);
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

// One pair's L x T cost block (row stride ld), turned into D in place; the backtrack then
// reads its moves from D.
template <class S> struct CostBlock {
  S* D;
  int64_t ld;
  bool diagonal;
  SKTDTW_HD S cost(int64_t i, int64_t j) const { return D[i * ld + j]; }
  SKTDTW_HD S above(int64_t i, int64_t j) const { return D[(i - 1) * ld + j]; }
  SKTDTW_HD void put(int64_t i, int64_t j, S cell, bool) const { D[i * ld + j] = cell; }
  SKTDTW_HD void choose(int64_t, int64_t, S, S, S) const {}
  SKTDTW_HD void operator()(int64_t i, int64_t j, bool& up, bool& diag) const {
    dtw_move(D[(i - 1) * ld + j], D[i * ld + j - 1], D[(i - 1) * ld + j - 1], diagonal, up, diag);
  }
};

// The whole per-pair step: DP over the pair's cost block, distance and encoded path (not
// traced when `path` is null: distances only).
template <class S>
SKTDTW_HD void dtw_pair(S* cost, int64_t ld, int64_t L, int64_t T, bool diagonal, S* dist,
                        int32_t* path) {
  CostBlock<S> block{cost, ld, diagonal};
  if (diagonal)
    dtw_accumulate<true, S>(block, L, T);
  else
    dtw_accumulate<false, S>(block, L, T);
  *dist = cost[(L - 1) * ld + T - 1];
  if (path) dtw_backtrack(block, L, T, path);
}

}  // namespace sktdtw
