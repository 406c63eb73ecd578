// CPU backend of the weighted-DTW op: the three primitives of docs/DESIGN.md section 2.
// All arrays are C-contiguous and owned by the caller (PyTorch); nothing is allocated here.
#pragma once

#include <cstdint>

namespace sktdtw::cpu {

// A packed ragged batch: sample b is values[offsets[b] : offsets[b+1]] (rows of F).
template <class S> struct Batch {
  const S* values;
  const int64_t* offsets;
  int64_t n_samples, n_features;
};

// The (K, L, F) centroids and weights.
template <class S> struct Params {
  const S* centroids;
  const S* weights;
  int64_t n_classes, length;
};

// dist (B, K) and path (B, K, L, 2) under (C, W); path may be null (distances only).
// `workspace` holds workspace_size cost entries, at least L x the longest sample: samples
// are processed in chunks whose K*L x steps cost matrix fits it, and a sample too long for
// that with its classes in groups.
template <class S>
void path(const Batch<S>& x, const Params<S>& p, bool diagonal, S* workspace,
          int64_t workspace_size, S* dist, int32_t* path);

// dist (B, K): the cost of the given paths under (C, W).
template <class S>
void path_cost(const Batch<S>& x, const Params<S>& p, const int32_t* path, S* dist);

// Gradients of sum(G * path_cost) into zero-initialised dC, dW (K, L, F) and, when not
// null, dX (sum T_b, F).
template <class S>
void path_grad(const Batch<S>& x, const Params<S>& p, const int32_t* path, const S* grad_dist,
               S* dC, S* dW, S* dX);

// Throws std::invalid_argument unless every path range lies inside its sample.
template <class S>
void check_paths(const Batch<S>& x, const Params<S>& p, const int32_t* path);

void set_num_threads(int n);  // 0: OpenMP's default
int get_num_threads();
const char* isa_name();  // the instruction set the kernels dispatched to
int vector_lanes(bool is_double);  // scalars per vector of that instruction set

}  // namespace sktdtw::cpu
