// CUDA backend of the weighted-DTW op: the three primitives of docs/DESIGN.md section 2.
//
// Plain C++ launchers (no CUDA types, no pybind11) so that bindings.cpp compiles with the
// host compiler. The batch and parameters are described by dtw_batch.h, as for the CPU
// backend, with device pointers owned by the caller (PyTorch). Every launch goes to
// `stream` (a cudaStream_t passed as an integer), nothing is allocated and nothing
// synchronises. Launch errors are thrown as std::runtime_error, bad sizes as
// std::invalid_argument.
#pragma once

#include <cstdint>

#include "dtw_batch.h"

namespace sktdtw::cuda {

// dist (B, K) and path (B, K, L, 2) of one chunk of samples under (C, W); path may be null
// (distances only). `workspace` holds workspace_size cost entries, at least L x n_rows;
// the chunk's K*L x n_rows cost matrix is computed in class groups that fit it
// (for_each_class_group).
template <class S>
void path(const Batch<S>& x, const Params<S>& p, bool diagonal, S* workspace,
          int64_t workspace_size, S* dist, int32_t* path, std::uintptr_t stream);

// dist (B, K): the cost of the given paths under (C, W). Paths are checked by the caller
// (and ranges are clamped to their sample all the same, so a bad one cannot fault).
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
