// What the CPU and CUDA primitives are called with: a packed ragged batch (or a chunk of
// one) and the centroids and weights, plus the one rule that tiles a chunk's cost matrix.
//
// The Python backends (sktdtw/dtw/_backends/_compiled.py) lay the arrays out, check them,
// cut the batch into chunks of whole samples and allocate every output and workspace;
// nothing here allocates. Pointers are host pointers for the CPU backend and device
// pointers for the CUDA backend.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#if defined(__CUDACC__)
#define SKTDTW_HD __host__ __device__ inline
#define SKTDTW_HD_INLINE __host__ __device__ __forceinline__
#else
#define SKTDTW_HD inline
// Always inlined, so that it is compiled for the caller's instruction set (FMA included).
#define SKTDTW_HD_INLINE inline __attribute__((always_inline))
#endif

namespace sktdtw {

// A packed ragged batch, possibly a chunk of a bigger one: sample b (0 <= b < n_samples) is
// rows [offsets[b] - row_base, offsets[b+1] - row_base) of `values` (n_rows x n_features).
// `offsets` are the whole batch's from the chunk's first sample on; `row_base` is
// offsets[0] as the caller knows it (a CUDA caller cannot read device offsets).
template <class S> struct Batch {
  const S* values;
  const int64_t* offsets;
  int64_t n_samples, n_rows, n_features, row_base;

  SKTDTW_HD int64_t start(int64_t b) const { return offsets[b] - row_base; }
  SKTDTW_HD int64_t length(int64_t b) const { return offsets[b + 1] - offsets[b]; }
  SKTDTW_HD const S* sample(int64_t b) const { return values + start(b) * n_features; }
};

// The (K, L, F) centroids and weights; F is the batch's n_features.
template <class S> struct Params {
  const S* centroids;
  const S* weights;
  int64_t n_classes, length;
};

// The cost matrix of `path` holds K*L rows x n_rows columns; a workspace smaller than that
// (a chunk that is one long sample) takes the classes in groups whose rows fit. Calls
// visit(k0, n_group) for each group in order. Throws std::invalid_argument when not even
// one class fits.
template <class Visit>
void for_each_class_group(int64_t n_classes, int64_t length, int64_t n_rows,
                          int64_t workspace_size, Visit&& visit) {
  if (n_rows < 1) return;
  if (length * n_rows > workspace_size)
    throw std::invalid_argument("sktdtw: workspace smaller than one centroid's cost block");
  const int64_t group = std::min(n_classes, workspace_size / (length * n_rows));
  for (int64_t k0 = 0; k0 < n_classes; k0 += group) visit(k0, std::min(group, n_classes - k0));
}

}  // namespace sktdtw
