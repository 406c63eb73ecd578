// CUDA backend of the weighted-DTW op: the three primitives of docs/DESIGN.md section 2.
//
// Plain C++ launchers (no CUDA types, no pybind11) so that bindings.cpp compiles with the
// host compiler. Every pointer is a device pointer owned by the caller (PyTorch), every
// launch goes to `stream` (a cudaStream_t passed as an integer), nothing is allocated and
// nothing synchronises. Launch errors are thrown as std::runtime_error, bad sizes as
// std::invalid_argument.
#pragma once

#include <cstdint>

namespace sktdtw::cuda {

// A packed ragged batch, possibly a chunk of a bigger one: sample b (0 <= b < n_samples) is
// rows [offsets[b] - row_base, offsets[b+1] - row_base) of `values` (n_rows x n_features).
// `offsets` lives on the device; `row_base` is offsets[0] as the caller knows it on the host.
template <class S> struct Batch {
  const S* values;
  const int64_t* offsets;
  int64_t n_samples, n_rows, n_features, row_base;
};

// The (K, L, F) centroids and weights.
template <class S> struct Params {
  const S* centroids;
  const S* weights;
  int64_t n_classes, length;
};

// dist (B, K) and path (B, K, L, 2) under (C, W). `workspace` holds K*L x n_rows cost
// entries (the caller chunks the batch so that this fits).
template <class S>
void path(const Batch<S>& x, const Params<S>& p, bool diagonal, S* workspace, S* dist,
          int32_t* path, std::uintptr_t stream);

// dist (B, K): the cost of the given paths under (C, W).
template <class S>
void path_cost(const Batch<S>& x, const Params<S>& p, const int32_t* path, S* dist,
               std::uintptr_t stream);

// Gradients of sum(G * path_cost). When dC and dW are not null they are overwritten with
// the (K, L, F) parameter gradients over the whole batch. When dX is not null it is
// overwritten with the (n_rows, F) values gradient; `index_workspace` then holds
// 2 * K * n_rows int32 (the caller chunks the batch so that this fits).
template <class S>
void path_grad(const Batch<S>& x, const Params<S>& p, const int32_t* path, const S* grad_dist,
               S* dC, S* dW, S* dX, int32_t* index_workspace, std::uintptr_t stream);

// CUDA devices visible to this module's runtime; 0 when there is none or the driver is
// too old for it (so a GPU-less machine or a stale driver reads as "not available").
int device_count();

}  // namespace sktdtw::cuda
