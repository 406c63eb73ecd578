// CPU kernels of the weighted-DTW op.
//
// The cost matrix cost[(k,i), (b,j)] = sum_f W[k,i,f] |C[k,i,f] - X_b[j,f]| is a GEMM-shaped
// product ("L1-GEMM"): it is tiled like one, with MR x NR register blocks vectorised along
// the features and feature chunks that stay in L1. The per-pair DP (dtw_pair.h) then runs in
// place on that matrix, one pair per thread. With few features the cost matrix is cheap to
// compute and dear to store: it is computed a sample at a time into a per-thread block that
// the DP reads at once from L2 (path_by_sample), and with up to kClassLaneFeatures the DP,
// then most of the work, runs a vector of classes at once, computing each cell's cost where
// it needs it (path_by_class_lanes). path_cost / path_grad touch only path cells.
//
// Every kernel body is a template over the vector width; it is compiled once per
// instruction set (AVX-512, AVX2, baseline) and the widest one the CPU supports is picked
// at run time, so one binary is portable (SKTDTW_CPU_ISA=baseline or avx2 caps it, so that
// the tests can run every instruction set a CPU has). Sums have a fixed order everywhere
// (each output owned by one task, no atomics), so results do not depend on the thread
// count or on which thread runs a task, and a cell's cost is added in the same order by the cost matrix and by the
// path primitives (FeatureChunks, dtw_pair.h's cell_costs): a path's cost under the
// parameters that chose it is the DP's distance, bit for bit.
#include "cpu_kernels.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dtw_pair.h"
#include "simd.h"

namespace sktdtw::cpu {
namespace {

using simd::hsum;
using simd::load_part;
using simd::loadu;
using simd::store_part;
using simd::storeu;
using simd::vabs;
using simd::vsign;

constexpr int64_t kChunkBytes = 4096;  // features per cache chunk: a tile's 2 MR rows stay in L1
constexpr int64_t kRowBlock = 64;      // centroid rows per cost task
constexpr int64_t kColBlock = 128;     // sample steps per cost task
constexpr int64_t kClassBlockBytes = 1 << 20;  // centroids + weights per path_cost task: in L2
constexpr int64_t kSlotBytes = 1 << 18;         // cost blocks per thread in path_by_sample: in L2
constexpr int64_t kClassLaneFeatures = 4;       // path_by_class_lanes up to this many features

// The summation rule above kSequentialFeatures features: the features are cut into chunks
// of kChunkBytes (the last one also takes the tail past the whole vectors); within a chunk
// the terms go to vector lanes in feature order and the lanes are added in hsum's fixed tree;
// the chunks' sums are added in order. cost_block applies it tile by tile, pair_path_cost
// cell by cell.
template <class S, int VB> struct FeatureChunks {
  static constexpr int lanes = simd::vec_of<S, VB>::lanes;
  static constexpr int64_t chunk = kChunkBytes / sizeof(S);
  int64_t F, f_vec, count;
  explicit FeatureChunks(int64_t n_features)
      : F(n_features), f_vec(n_features - n_features % lanes),
        count(f_vec == 0 ? 1 : (f_vec + chunk - 1) / chunk) {}
  int64_t begin(int64_t ch) const { return ch * chunk; }
  int64_t end(int64_t ch) const { return std::min(begin(ch) + chunk, f_vec); }
  int64_t tail(int64_t ch) const { return ch == count - 1 ? F - f_vec : 0; }
};

// res[a][b] = sum over [f0, f1) (+ the tail) of w_a |c_a - x_b| for an MR x NR tile.
template <class S, int VB, int MR, int NR>
SKTDTW_INLINE void l1_tile(const S* const* c, const S* const* w, const S* const* x, int64_t f0,
                           int64_t f1, int64_t tail_at, int64_t tail_len, S (*res)[NR]) {
  using V = typename simd::vec_of<S, VB>::type;
  constexpr int lanes = simd::vec_of<S, VB>::lanes;
  V acc[MR][NR] = {};
  for (int64_t f = f0; f < f1; f += lanes) {
    V xv[NR];
    for (int b = 0; b < NR; ++b) xv[b] = loadu<V>(x[b] + f);
    for (int a = 0; a < MR; ++a) {
      const V cv = loadu<V>(c[a] + f), wv = loadu<V>(w[a] + f);
      for (int b = 0; b < NR; ++b) acc[a][b] += wv * vabs<S, VB>(cv - xv[b]);
    }
  }
  if (tail_len) {
    // With at least one full vector of features, reload the last full vector (which
    // overlaps counted lanes) and zero the counted lanes' weights: no partial loads.
    const bool overlap = tail_at >= lanes;
    const int64_t at = overlap ? tail_at + tail_len - lanes : tail_at;
    const V keep = simd::last_lanes<S, VB>(tail_len);
    auto load_tail = [&](const S* q) SKTDTW_LAMBDA_INLINE {
      return overlap ? loadu<V>(q + at) : load_part<V>(q + at, tail_len);
    };
    V xv[NR];
    for (int b = 0; b < NR; ++b) xv[b] = load_tail(x[b]);
    for (int a = 0; a < MR; ++a) {
      const V cv = load_tail(c[a]), wv = overlap ? simd::and_mask(load_tail(w[a]), keep) : load_tail(w[a]);
      for (int b = 0; b < NR; ++b) acc[a][b] += wv * vabs<S, VB>(cv - xv[b]);
    }
  }
  for (int a = 0; a < MR; ++a)
    for (int b = 0; b < NR; ++b) res[a][b] = hsum<S, VB>(acc[a][b]);
}

// Row pointers of an MR-row tile starting at r; rows past r1 repeat the last one (computed,
// never stored), so partial tiles need no separate code.
template <int MR, class S>
SKTDTW_INLINE void tile_rows(const S* C, const S* W, int64_t F, int64_t r, int64_t r1,
                             const S* (&c)[MR], const S* (&w)[MR]) {
  for (int a = 0; a < MR; ++a) {
    const int64_t row = std::min(r + a, r1 - 1);
    c[a] = C + row * F;
    w[a] = W + row * F;
  }
}

// out[r, n] for rows [r0, r1) of (C, W) and sample rows [n0, n1) of X, all F features.
// Partial tiles repeat their last column (and row) and store only the valid part.
template <class S, int VB, int MR, int NR>
SKTDTW_INLINE void cost_block(const S* X, const S* C, const S* W, int64_t F, int64_t r0,
                              int64_t r1, int64_t n0, int64_t n1, S* out, int64_t ld_out) {
  const FeatureChunks<S, VB> chunks(F);
  for (int64_t ch = 0; ch < chunks.count; ++ch) {
    for (int64_t r = r0; r < r1; r += MR) {
      const S *c[MR], *w[MR];
      tile_rows<MR>(C, W, F, r, r1, c, w);
      for (int64_t n = n0; n < n1; n += NR) {
        const S* x[NR];
        for (int b = 0; b < NR; ++b) x[b] = X + std::min(n + b, n1 - 1) * F;
        S res[MR][NR];
        l1_tile<S, VB, MR, NR>(c, w, x, chunks.begin(ch), chunks.end(ch), chunks.f_vec,
                               chunks.tail(ch), res);
        for (int a = 0; a < MR && r + a < r1; ++a)
          for (int b = 0; b < NR && n + b < n1; ++b) {
            S& o = out[(r + a) * ld_out + n + b];
            o = ch == 0 ? res[a][b] : o + res[a][b];
          }
      }
    }
  }
}

// Few features: the same block vectorised across sample steps instead of features (the
// usual GEMM orientation), so no horizontal sums and each lane adds its cell's terms in
// cell_costs' order. The block's steps are transposed into xt[f][n] (zero past the block's
// end); c and w are broadcast per feature.
template <class S, int VB, int MR, int NR>
SKTDTW_INLINE void cost_block_small_f(const S* X, const S* C, const S* W, int64_t F,
                                      int64_t r0, int64_t r1, int64_t n0, int64_t n1, S* out,
                                      int64_t ld_out) {
  using V = typename simd::vec_of<S, VB>::type;
  constexpr int lanes = simd::vec_of<S, VB>::lanes;
  constexpr int64_t width = NR * lanes;  // sample steps per micro-tile
  constexpr int64_t ld_xt = (kColBlock + width - 1) / width * width;
  // On the heap, once per thread: 64-128 KiB on the stack would eat into the small stacks
  // of worker threads.
  static thread_local std::vector<S> transposed(kSequentialFeatures * ld_xt);
  S* xt = transposed.data();
  const int64_t n_cols = n1 - n0;
  for (int64_t f = 0; f < F; ++f) {
    for (int64_t n = 0; n < n_cols; ++n) xt[f * ld_xt + n] = X[(n0 + n) * F + f];
    for (int64_t n = n_cols; n < ld_xt; ++n) xt[f * ld_xt + n] = S(0);
  }
  for (int64_t n = 0; n < n_cols; n += width) {
    for (int64_t r = r0; r < r1; r += MR) {
      const S *c[MR], *w[MR];
      tile_rows<MR>(C, W, F, r, r1, c, w);
      V acc[MR][NR] = {};
      for (int64_t f = 0; f < F; ++f) {
        V xv[NR];
        for (int b = 0; b < NR; ++b) xv[b] = loadu<V>(xt + f * ld_xt + n + b * lanes);
        for (int a = 0; a < MR; ++a) {
          const V cb = V{} + c[a][f], wb = V{} + w[a][f];
          for (int b = 0; b < NR; ++b) acc[a][b] += wb * vabs<S, VB>(cb - xv[b]);
        }
      }
      for (int a = 0; a < MR && r + a < r1; ++a)
        for (int b = 0; b < NR; ++b) {
          const int64_t first = n + b * lanes, valid = std::min<int64_t>(lanes, n_cols - first);
          S* o = out + (r + a) * ld_out + n0 + first;
          if (valid == lanes)
            storeu(o, acc[a][b]);
          else if (valid > 0)
            store_part(o, acc[a][b], valid);
        }
    }
  }
}

// The cost of one pair's path: its cells' costs, each added as the cost matrix adds it,
// summed in path order as the DP sums them. Up to four consecutive steps of a range share
// each load of (c, w).
template <class S, int VB>
SKTDTW_INLINE S pair_path_cost(const S* Xb, const S* Ck, const S* Wk, int64_t L, int64_t F,
                               const int32_t* path) {
  const FeatureChunks<S, VB> chunks(F);
  S total = 0;
  for (int64_t i = 0; i < L; ++i) {
    const S* c = Ck + i * F;
    const S* w = Wk + i * F;
    for (int64_t j = path[2 * i], hi = path[2 * i + 1]; j <= hi; j += 4) {
      const S* x[4];
      for (int b = 0; b < 4; ++b) x[b] = Xb + std::min<int64_t>(j + b, hi) * F;
      S cells[4];
      if (F <= kSequentialFeatures) {
        cell_costs<4>(c, w, x, F, cells);
      } else {
        for (int64_t ch = 0; ch < chunks.count; ++ch) {
          S res[1][4];
          l1_tile<S, VB, 1, 4>(&c, &w, x, chunks.begin(ch), chunks.end(ch), chunks.f_vec,
                               chunks.tail(ch), res);
          for (int b = 0; b < 4; ++b) cells[b] = ch == 0 ? res[0][b] : cells[b] + res[0][b];
        }
      }
      for (int b = 0; b < 4 && j + b <= hi; ++b) total += cells[b];
    }
  }
  return total;
}

// Few features and several classes: one sample's DP against `lanes` classes at once, a
// class per vector lane. The pairs are independent and each lane does the scalar DP's
// operations in its order, so distances and paths are those of dtw_pair bit for bit. The
// cells' costs are computed where the DP needs them, in cell_costs' order, from centroids
// and weights laid out class-innermost (c[(i * F + f) * lanes + l] is class k0 + l's); only
// the last finished row of D is kept (`row`), and the backtrack reads each cell's move from
// one bit per lane (`moves`).
using MoveBits = uint32_t __attribute__((may_alias));  // stored in the float workspace
template <class S, int VB, bool Diagonal, bool Traced> struct ClassLanes {
  using V = typename simd::vec_of<S, VB>::type;
  using I = typename simd::vec_of<S, VB>::itype;
  static constexpr int lanes = simd::vec_of<S, VB>::lanes;
  static_assert(lanes <= 16, "moves hold 16 lanes");
  const S *x, *c, *w;
  int64_t F, T;
  S* row;           // T vectors: D of the last finished row
  MoveBits* moves;  // L x T: bit l "up", bit 16 + l "diagonal" of lane l's move
  SKTDTW_INLINE V cost(int64_t i, int64_t j) const {
    V acc = {};
    for (int64_t f = 0; f < F; ++f) {
      const int64_t at = (i * F + f) * lanes;
      acc += loadu<V>(w + at) * vabs<S, VB>(loadu<V>(c + at) - (V{} + x[j * F + f]));
    }
    return acc;
  }
  SKTDTW_INLINE V above(int64_t, int64_t j) const { return loadu<V>(row + j * lanes); }
  SKTDTW_INLINE void put(int64_t, int64_t j, V cell, bool last) const {
    if (last) storeu(row + j * lanes, cell);
  }
  SKTDTW_INLINE void choose(int64_t i, int64_t j, V u, V l, V d) const {
    if constexpr (Traced) {
      I up, diag;
      dtw_move(u, l, d, Diagonal, up, diag);
      moves[i * T + j] = simd::lane_bits<S, VB>(up) | simd::lane_bits<S, VB>(diag) << 16;
    }
  }
  struct Lane {  // one lane's moves, for dtw_backtrack
    const MoveBits* moves;
    int64_t T;
    int lane;
    void operator()(int64_t i, int64_t j, bool& up, bool& diag) const {
      const uint32_t m = moves[i * T + j];
      up = (m >> lane) & 1u;
      diag = (m >> (16 + lane)) & 1u;
    }
  };
};

// dist[l] and path + l * L * 2 of lanes l < n_valid (the lanes past them repeat a class).
template <class S, int VB, bool Diagonal, bool Traced>
SKTDTW_INLINE void dtw_class_lanes(const S* xb, int64_t T, const S* c, const S* w, int64_t L,
                                   int64_t F, int n_valid, S* dist, int32_t* path, S* row,
                                   MoveBits* moves) {
  using Cells = ClassLanes<S, VB, Diagonal, Traced>;
  const Cells cells{xb, c, w, F, T, row, moves};
  dtw_accumulate<Diagonal, typename Cells::V>(cells, L, T);
  for (int l = 0; l < n_valid; ++l) {
    dist[l] = row[(T - 1) * Cells::lanes + l];
    if (Traced) dtw_backtrack(typename Cells::Lane{moves, T, l}, L, T, path + l * L * 2);
  }
}

// Vector u of a chunk of nf features (u below the vectors nf fills), zero-padded past nf
// when Partial.
template <class V, int lanes, bool Partial, class S>
SKTDTW_INLINE V load_chunk(const S* q, int64_t nf, int u) {
  if (!Partial) return loadu<V>(q + u * lanes);
  const int64_t n = std::min<int64_t>(lanes, nf - u * lanes);
  return n == lanes ? loadu<V>(q + u * lanes) : load_part<V>(q + u * lanes, n);
}

// dW and dC of class k on features [f0 + skip, f0 + nf), nf <= U vectors: the accumulators
// stay in registers while the loop runs over every sample's path in batch order. A partial
// last vector of a sample row is read whole, into the rows after it, unless that would pass
// the batch's end: those lanes are computed and never stored.
template <class S, int VB, bool Partial, int U>
SKTDTW_INLINE void grad_chunk(const Batch<S>& x, const Params<S>& p, const int32_t* path,
                              const S* G, int64_t k, int64_t f0, int64_t nf, int64_t skip, S* dC,
                              S* dW) {
  using V = typename simd::vec_of<S, VB>::type;
  constexpr int lanes = simd::vec_of<S, VB>::lanes;
  const int64_t F = x.n_features, K = p.n_classes, L = p.length;
  const S* x_end = x.values + x.n_rows * F;
  for (int64_t i = 0; i < L; ++i) {
    const int64_t row = (k * L + i) * F + f0;
    V c[U], acc_abs[U] = {}, acc_sign[U] = {};
    for (int u = 0; u < U; ++u) c[u] = load_chunk<V, lanes, Partial>(p.centroids + row, nf, u);
    for (int64_t b = 0; b < x.n_samples; ++b) {
      const int32_t* range = path + ((b * K + k) * L + i) * 2;
      const S* xb = x.sample(b) + f0;
      V s_abs[U] = {}, s_sign[U] = {};
      for (int64_t j = range[0]; j <= range[1]; ++j) {
        const S* xj = xb + j * F;
        const bool whole = !Partial || x_end - xj >= U * lanes;
        for (int u = 0; u < U; ++u) {
          const V d = c[u] - (whole ? loadu<V>(xj + u * lanes) : load_chunk<V, lanes, true>(xj, nf, u));
          const V unit = simd::unit_sign<S, VB>(d);
          s_abs[u] += d * unit;  // |d|, exactly, in one FMA
          s_sign[u] = d != V{} ? s_sign[u] + unit : s_sign[u];  // sign(0) = 0: a masked add
        }
      }
      const S g = G[b * K + k];
      for (int u = 0; u < U; ++u) {
        acc_abs[u] += g * s_abs[u];
        acc_sign[u] += g * s_sign[u];
      }
    }
    S out_w[U * lanes], out_c[U * lanes];
    for (int u = 0; u < U; ++u) {
      storeu(out_w + u * lanes, acc_abs[u]);
      storeu(out_c + u * lanes, load_chunk<V, lanes, Partial>(p.weights + row, nf, u) * acc_sign[u]);
    }
    // Only features from `skip` on belong to this task (the last chunk overlaps the one before).
    std::memcpy(dW + row + skip, out_w + skip, (nf - skip) * sizeof(S));
    std::memcpy(dC + row + skip, out_c + skip, (nf - skip) * sizeof(S));
  }
}

// dX of one sample: -sum over (k, i) whose range holds j of G w sign(c - x).
template <class S, int VB>
SKTDTW_INLINE void grad_values_sample(const Batch<S>& x, const Params<S>& p, const int32_t* path,
                                      const S* G, int64_t b, S* dX) {
  using V = typename simd::vec_of<S, VB>::type;
  constexpr int lanes = simd::vec_of<S, VB>::lanes;
  const int64_t F = x.n_features, K = p.n_classes, L = p.length;
  const S* xb = x.sample(b);
  S* db = dX + x.start(b) * F;
  for (int64_t k = 0; k < K; ++k) {
    const S g = G[b * K + k];
    for (int64_t i = 0; i < L; ++i) {
      const int32_t* range = path + ((b * K + k) * L + i) * 2;
      const S* c = p.centroids + (k * L + i) * F;
      const S* w = p.weights + (k * L + i) * F;
      for (int64_t j = range[0]; j <= range[1]; ++j) {
        int64_t f = 0;
        for (; f + lanes <= F; f += lanes) {
          const V d = loadu<V>(c + f) - loadu<V>(xb + j * F + f);
          storeu(db + j * F + f, loadu<V>(db + j * F + f) - g * loadu<V>(w + f) * vsign<S, VB>(d));
        }
        if (f < F) {
          const int64_t n = F - f;
          const V d = load_part<V>(c + f, n) - load_part<V>(xb + j * F + f, n);
          store_part(db + j * F + f, load_part<V>(db + j * F + f, n) - g * load_part<V>(w + f, n) * vsign<S, VB>(d), n);
        }
      }
    }
  }
}

// dtw_class_lanes at one vector width.
template <class S> struct ClassLaneKernels {
  using Dtw = void (*)(const S*, int64_t, const S*, const S*, int64_t, int64_t, int, S*,
                       int32_t*, S*, MoveBits*);
  Dtw dtw[2][2];  // [diagonal][traced]
  int lanes;
};

// One table of kernels per (scalar, instruction set).
template <class S> struct Kernels {
  void (*cost_block)(const S*, const S*, const S*, int64_t, int64_t, int64_t, int64_t, int64_t, S*, int64_t);
  S (*pair_path_cost)(const S*, const S*, const S*, int64_t, int64_t, const int32_t*);
  using GradChunk = void (*)(const Batch<S>&, const Params<S>&, const int32_t*, const S*, int64_t, int64_t, int64_t, int64_t, S*, S*);
  GradChunk grad_chunk[2][4];  // [last vector partial][vectors - 1]
  void (*grad_values_sample)(const Batch<S>&, const Params<S>&, const int32_t*, const S*, int64_t, S*);
  ClassLaneKernels<S> class_lanes[2];  // the full vector width, and half of it (or the same)
  int lanes;
};

#define SKTDTW_ISA_KERNELS(NAME, TARGET, VB, MR, NR, HALF_VB)                                      \
  template <class S> TARGET void NAME##_cost_block(const S* X, const S* C, const S* W, int64_t F,  \
      int64_t r0, int64_t r1, int64_t n0, int64_t n1, S* out, int64_t ld) {                        \
    if (F <= kSequentialFeatures)                                                                   \
      cost_block_small_f<S, VB, MR, NR>(X, C, W, F, r0, r1, n0, n1, out, ld);                       \
    else                                                                                            \
      cost_block<S, VB, MR, NR>(X, C, W, F, r0, r1, n0, n1, out, ld);                               \
  }                                                                                                 \
  template <class S> TARGET S NAME##_pair_path_cost(const S* Xb, const S* Ck, const S* Wk,          \
      int64_t L, int64_t F, const int32_t* path) {                                                  \
    return pair_path_cost<S, VB>(Xb, Ck, Wk, L, F, path);                                           \
  }                                                                                                 \
  template <class S, bool Partial, int U> TARGET void NAME##_grad_chunk(const Batch<S>& x,          \
      const Params<S>& p, const int32_t* path, const S* G, int64_t k, int64_t f0, int64_t nf,       \
      int64_t skip, S* dC, S* dW) {                                                                 \
    grad_chunk<S, VB, Partial, U>(x, p, path, G, k, f0, nf, skip, dC, dW);                          \
  }                                                                                                 \
  template <class S> TARGET void NAME##_grad_values_sample(const Batch<S>& x, const Params<S>& p,   \
      const int32_t* path, const S* G, int64_t b, S* dX) {                                          \
    grad_values_sample<S, VB>(x, p, path, G, b, dX);                                                \
  }                                                                                                 \
  template <class S, int LVB, bool Diagonal, bool Traced> TARGET void NAME##_dtw_class_lanes(       \
      const S* xb, int64_t T, const S* c, const S* w, int64_t L, int64_t F, int n_valid, S* dist,   \
      int32_t* path, S* row, MoveBits* moves) {                                                     \
    dtw_class_lanes<S, LVB, Diagonal, Traced>(xb, T, c, w, L, F, n_valid, dist, path, row, moves);  \
  }                                                                                                 \
  template <class S, int LVB> ClassLaneKernels<S> NAME##_class_lane_kernels() {                     \
    return {{{NAME##_dtw_class_lanes<S, LVB, false, false>,                                          \
              NAME##_dtw_class_lanes<S, LVB, false, true>},                                          \
             {NAME##_dtw_class_lanes<S, LVB, true, false>,                                           \
              NAME##_dtw_class_lanes<S, LVB, true, true>}},                                          \
            static_cast<int>(LVB / sizeof(S))};                                                     \
  }                                                                                                 \
  template <class S> Kernels<S> NAME##_kernels() {                                                  \
    return {NAME##_cost_block<S>, NAME##_pair_path_cost<S>,                                         \
            {{NAME##_grad_chunk<S, false, 1>, NAME##_grad_chunk<S, false, 2>,                        \
              NAME##_grad_chunk<S, false, 3>, NAME##_grad_chunk<S, false, 4>},                       \
             {NAME##_grad_chunk<S, true, 1>, NAME##_grad_chunk<S, true, 2>,                          \
              NAME##_grad_chunk<S, true, 3>, NAME##_grad_chunk<S, true, 4>}},                        \
            NAME##_grad_values_sample<S>,                                                           \
            {NAME##_class_lane_kernels<S, VB>(), NAME##_class_lane_kernels<S, HALF_VB>()},          \
            static_cast<int>(VB / sizeof(S))};                                                      \
  }

// Register budgets: AVX-512 has 32 vector registers (4x4 accumulators), AVX2 and the
// 128-bit baseline 16 (2x4). The last argument is the narrower width of dtw_class_lanes.
SKTDTW_ISA_KERNELS(baseline, , 16, 2, 4, 16)
#if defined(__x86_64__) || defined(_M_X64)
SKTDTW_ISA_KERNELS(avx2, __attribute__((target("avx2,fma"))), 32, 2, 4, 16)
SKTDTW_ISA_KERNELS(avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))), 64, 4, 4, 32)
#endif

enum class Isa { baseline, avx2, avx512 };  // in order of width

Isa supported_isa() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::baseline;
}

// The widest supported instruction set, capped by SKTDTW_CPU_ISA (baseline, avx2 or avx512;
// the Python backend refuses other values before the kernels run).
Isa detect_isa() {
  const Isa supported = supported_isa();
  const char* cap = std::getenv("SKTDTW_CPU_ISA");
  if (cap == nullptr) return supported;
  const Isa asked = std::strcmp(cap, "baseline") == 0 ? Isa::baseline
                    : std::strcmp(cap, "avx2") == 0   ? Isa::avx2
                                                      : Isa::avx512;
  return std::min(asked, supported);
}

const Isa kIsa = detect_isa();

template <class S> const Kernels<S>& kernels() {
  static const Kernels<S> table = [] {
#if defined(__x86_64__) || defined(_M_X64)
    if (kIsa == Isa::avx512) return avx512_kernels<S>();
    if (kIsa == Isa::avx2) return avx2_kernels<S>();
#endif
    return baseline_kernels<S>();
  }();
  return table;
}

std::atomic<int> g_num_threads{0};

int threads() {
  const int n = g_num_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

// Threads for a parallel loop of about `work` feature-terms or DP cells: one below
// kParallelWork, where starting a team costs about what it saves and, on a busy machine, a
// thread waiting for a descheduled peer at the barrier makes the loop slower than one
// thread would be. The loops hand out their tasks dynamically, so a thread on a busy core
// takes fewer of them (each task owns its outputs: results do not depend on who runs it).
constexpr int64_t kParallelWork = int64_t(1) << 17;
int threads_for(int64_t work) { return work < kParallelWork ? 1 : threads(); }

}  // namespace

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0); }
int get_num_threads() { return threads(); }
const char* isa_name() {
  return kIsa == Isa::avx512 ? "avx512" : kIsa == Isa::avx2 ? "avx2" : "baseline";
}

// The longest sample of a batch (chunk), in steps.
template <class S> int64_t longest_sample(const Batch<S>& x) {
  int64_t longest = 0;
  for (int64_t b = 0; b < x.n_samples; ++b) longest = std::max(longest, x.length(b));
  return longest;
}

// Few features: a cell's cost is cheap to compute and dear to store. Each task (sample,
// group of classes) computes its pairs' cost blocks into the running thread's slot of the
// workspace, small enough to stay in L2 for the DP that follows, where a whole chunk's
// cost matrix would go out to L3 and back. The cells' values are those of the cost matrix.
template <class S>
void path_by_sample(const Batch<S>& x, const Params<S>& p, bool diagonal, S* workspace,
                    int64_t workspace_size, S* dist, int32_t* out_path) {
  const Kernels<S>& kern = kernels<S>();
  const int64_t K = p.n_classes, L = p.length, F = x.n_features, B = x.n_samples;
  const int64_t longest = longest_sample(x);
  if (longest == 0 || K == 0) return;
  const int64_t one_class = L * longest;
  if (one_class > workspace_size)
    throw std::invalid_argument("sktdtw: workspace smaller than one centroid's cost block");
  // A slot holds whole classes' blocks, up to kSlotBytes, smaller where that lets every
  // thread have one; the threads are as many as there are slots.
  const int asked = threads_for(K * L * x.n_rows);
  const int64_t wanted = std::min<int64_t>({kSlotBytes / int64_t(sizeof(S)), K * one_class,
                                            workspace_size / asked});
  const int64_t slot = std::max(one_class, wanted);
  const int64_t group = std::min(K, slot / one_class), groups = (K + group - 1) / group;
  const int n_threads = static_cast<int>(std::min<int64_t>(asked, workspace_size / slot));
#pragma omp parallel for schedule(dynamic) num_threads(n_threads)
  for (int64_t t = 0; t < B * groups; ++t) {
    const int64_t b = t / groups, k0 = (t % groups) * group, n_group = std::min(group, K - k0);
    const int64_t T = x.length(b);
    S* cost = workspace + omp_get_thread_num() * slot;
    for (int64_t n0 = 0; n0 < T; n0 += kColBlock)
      kern.cost_block(x.sample(b), p.centroids + k0 * L * F, p.weights + k0 * L * F, F, 0,
                      n_group * L, n0, std::min(T, n0 + kColBlock), cost, T);
    for (int64_t k = 0; k < n_group; ++k) {
      const int64_t pair = b * K + k0 + k;
      dtw_pair(cost + k * L * T, T, L, T, diagonal, dist + pair,
               out_path ? out_path + pair * L * 2 : nullptr);
    }
  }
}

// Very few features and several classes: the DP is most of the work, and its chain of
// dependent cells runs a class per vector lane (dtw_class_lanes), a task per (sample, group
// of `lanes` classes), at the vector width that leaves fewer lanes idle (the full width
// on a tie). A thread's slot of the workspace holds one row of D per lane and the moves
// (L x T bits per lane) of its task. Taken where it measured faster (at least half the
// chosen width's lanes filled, up to kClassLaneFeatures features: bench_kernels.py) and the
// workspace holds a slot for each thread; returns false, doing nothing, elsewhere.
template <class S>
bool path_by_class_lanes(const Batch<S>& x, const Params<S>& p, bool diagonal, S* workspace,
                         int64_t workspace_size, S* dist, int32_t* out_path) {
  const int64_t K = p.n_classes, L = p.length, F = x.n_features, B = x.n_samples;
  const ClassLaneKernels<S>* widths = kernels<S>().class_lanes;
  auto idle = [K](const ClassLaneKernels<S>& k) {
    return (K + k.lanes - 1) / k.lanes * k.lanes - K;
  };
  const ClassLaneKernels<S>& kern = idle(widths[1]) < idle(widths[0]) ? widths[1] : widths[0];
  const int lanes = kern.lanes;
  if (F > kClassLaneFeatures || 2 * K < lanes) return false;
  const int64_t longest = longest_sample(x);
  const int64_t slot = (L + lanes) * longest;  // (moves: one 32-bit word per cell <= one S)
  // Every thread asked for needs its slot; path_by_sample shrinks its slots instead.
  const int n_threads = threads_for(K * L * x.n_rows);
  if (longest == 0 || workspace_size / slot < n_threads) return false;
  const int64_t groups = (K + lanes - 1) / lanes, block = L * F * lanes;
  std::vector<S> laid(2 * groups * block);  // centroids, then weights, class-innermost
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t e = 0; e < L * F; ++e)  // e = i * F + f
      for (int l = 0; l < lanes; ++l) {
        const int64_t k = std::min<int64_t>(g * lanes + l, K - 1);
        laid[g * block + e * lanes + l] = p.centroids[k * L * F + e];
        laid[(groups + g) * block + e * lanes + l] = p.weights[k * L * F + e];
      }
#pragma omp parallel for schedule(dynamic) num_threads(n_threads)
  for (int64_t t = 0; t < B * groups; ++t) {
    const int64_t b = t / groups, g = t % groups, pair = b * K + g * lanes;
    S* row = workspace + omp_get_thread_num() * slot;
    kern.dtw[diagonal][out_path != nullptr](
        x.sample(b), x.length(b), laid.data() + g * block, laid.data() + (groups + g) * block, L,
        F, static_cast<int>(std::min<int64_t>(lanes, K - g * lanes)), dist + pair,
        out_path ? out_path + pair * L * 2 : nullptr, row,
        reinterpret_cast<MoveBits*>(row + lanes * longest));
  }
  return true;
}

template <class S>
void path(const Batch<S>& x, const Params<S>& p, bool diagonal, S* workspace,
          int64_t workspace_size, S* dist, int32_t* out_path) {
  if (path_by_class_lanes(x, p, diagonal, workspace, workspace_size, dist, out_path)) return;
  if (x.n_features <= kSequentialFeatures)
    return path_by_sample(x, p, diagonal, workspace, workspace_size, dist, out_path);
  const Kernels<S>& kern = kernels<S>();
  const int64_t K = p.n_classes, L = p.length, F = x.n_features, N = x.n_rows;
  for_each_class_group(K, L, N, workspace_size, [&](int64_t k0, int64_t n_group) {
    const int64_t R = n_group * L;
    const S* C = p.centroids + k0 * L * F;
    const S* W = p.weights + k0 * L * F;
    const int64_t row_blocks = (R + kRowBlock - 1) / kRowBlock;
    const int64_t tasks = row_blocks * ((N + kColBlock - 1) / kColBlock);
#pragma omp parallel for schedule(dynamic) num_threads(threads_for(R * N * F))
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t r0 = (t % row_blocks) * kRowBlock, n0 = (t / row_blocks) * kColBlock;
      kern.cost_block(x.values, C, W, F, r0, std::min(R, r0 + kRowBlock), n0,
                      std::min(N, n0 + kColBlock), workspace, N);
    }
    const int64_t pairs = x.n_samples * n_group;
#pragma omp parallel for schedule(guided) num_threads(threads_for(R * N))
    for (int64_t q = 0; q < pairs; ++q) {
      const int64_t b = q / n_group, k = q % n_group, pair = b * K + k0 + k;
      dtw_pair(workspace + k * L * N + x.start(b), N, L, x.length(b), diagonal, dist + pair,
               out_path ? out_path + pair * L * 2 : nullptr);
    }
  });
}

template <class S>
void path_cost(const Batch<S>& x, const Params<S>& p, const int32_t* path, S* dist) {
  const Kernels<S>& kern = kernels<S>();
  const int64_t K = p.n_classes, L = p.length, F = x.n_features;
  const int64_t B = x.n_samples;
  if (K == 0) return;  // (std::clamp below needs K >= 1)
  const int64_t path_terms = K * (L * B + x.n_rows) * F;
  // Tasks (class block, sample), block-major: a block's centroids and weights stay in L2
  // while the samples stream past them. Read from further out, a pair's (c, w) rows would
  // cost more time than its terms.
  const int64_t block = std::clamp<int64_t>(kClassBlockBytes / (2 * L * F * sizeof(S)), 1, K);
  const int64_t blocks = (K + block - 1) / block;
#pragma omp parallel for schedule(guided) num_threads(threads_for(path_terms))
  for (int64_t t = 0; t < blocks * B; ++t) {
    const int64_t b = t % B, k0 = (t / B) * block;
    for (int64_t k = k0; k < std::min(K, k0 + block); ++k)
      dist[b * K + k] = kern.pair_path_cost(x.sample(b), p.centroids + k * L * F,
                                            p.weights + k * L * F, L, F,
                                            path + (b * K + k) * L * 2);
  }
}

template <class S>
void path_grad(const Batch<S>& x, const Params<S>& p, const int32_t* path, const S* G, S* dC,
               S* dW, S* dX) {
  const Kernels<S>& kern = kernels<S>();
  const int64_t K = p.n_classes, L = p.length, F = x.n_features;
  const int64_t width = 4 * kern.lanes, chunks = (F + width - 1) / width;
  const int64_t path_terms = K * (L * x.n_samples + x.n_rows) * F;
  // Tasks (feature chunk, class), chunk-major so that consecutive tasks share sample
  // columns. With F >= width the last chunk is shifted back to full width (no partial
  // loads in the loop); fewer features take as many vectors as they fill.
#pragma omp parallel for schedule(dynamic) num_threads(threads_for(path_terms))
  for (int64_t t = 0; t < chunks * K; ++t) {
    const int64_t start = (t / K) * width, k = t % K;
    if (F >= width) {
      const int64_t f0 = std::min(start, F - width);
      kern.grad_chunk[false][3](x, p, path, G, k, f0, width, start - f0, dC, dW);
    } else {
      const int64_t vectors = (F + kern.lanes - 1) / kern.lanes;
      kern.grad_chunk[F % kern.lanes != 0][vectors - 1](x, p, path, G, k, 0, F, 0, dC, dW);
    }
  }
  if (dX) {
#pragma omp parallel for schedule(guided) num_threads(threads_for(path_terms))
    for (int64_t b = 0; b < x.n_samples; ++b) kern.grad_values_sample(x, p, path, G, b, dX);
  }
}

#define SKTDTW_INSTANTIATE(S)                                                                     \
  template void path<S>(const Batch<S>&, const Params<S>&, bool, S*, int64_t, S*, int32_t*);     \
  template void path_cost<S>(const Batch<S>&, const Params<S>&, const int32_t*, S*);             \
  template void path_grad<S>(const Batch<S>&, const Params<S>&, const int32_t*, const S*, S*, S*, S*);
SKTDTW_INSTANTIATE(float)
SKTDTW_INSTANTIATE(double)

}  // namespace sktdtw::cpu
