// CPU backend of the weighted-DTW op: the three primitives of docs/DESIGN.md section 2.
// All arrays are C-contiguous and owned by the caller (PyTorch); the kernels allocate only
// small scratch (per-thread transposes of a block of sample rows, a per-call copy of the
// centroids and weights laid out class-innermost for path_by_class_lanes).
// The batch and parameters are described by dtw_batch.h, as for the CUDA backend.
#pragma once

#include <cstdint>

#include "dtw_batch.h"

namespace sktdtw::cpu {

// Up to this many features a cell's cost is added feature by feature (dtw_pair.h's
// cell_costs; the cost matrix vectorises across sample steps); above it, by the feature
// chunks of cpu_kernels.cpp. Measured crossover of the two cost-matrix layouts ~256;
// cost_block_small_f's per-thread buffer stays <= 128 KiB. Rows this short are taken as
// the caller lays them out: padding them would only add work.
constexpr int64_t kSequentialFeatures = 128;

// dist (B, K) and path (B, K, L, 2) of one chunk of samples under (C, W); path may be null
// (distances only). `workspace` holds workspace_size cost entries, at least L x n_rows;
// the chunk's K*L x n_rows cost matrix is computed in class groups that fit it
// (for_each_class_group), or, up to kSequentialFeatures features, a sample's blocks at a
// time in per-thread slots of at least L x its longest sample. With very few features and
// several classes a slot of (L + lanes) x the longest sample holds one sample's DP against
// a vector of classes (the DP's last row per lane and a bit per lane and cell for the
// backtrack), where the workspace has room for one per thread.
template <class S>
void path(const Batch<S>& x, const Params<S>& p, bool diagonal, S* workspace,
          int64_t workspace_size, S* dist, int32_t* path);

// dist (B, K): the cost of the given paths under (C, W). Paths are checked by the caller.
template <class S>
void path_cost(const Batch<S>& x, const Params<S>& p, const int32_t* path, S* dist);

// Gradients of sum(G * path_cost) into dC, dW (K, L, F), overwritten, and, when not null,
// dX (n_rows, F), zero-initialised by the caller.
template <class S>
void path_grad(const Batch<S>& x, const Params<S>& p, const int32_t* path, const S* grad_dist,
               S* dC, S* dW, S* dX);

void set_num_threads(int n);  // 0: OpenMP's default
int get_num_threads();
const char* isa_name();  // the instruction set the kernels dispatched to

}  // namespace sktdtw::cpu
