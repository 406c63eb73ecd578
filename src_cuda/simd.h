// Portable SIMD through GCC/Clang vector extensions: the same kernel source is compiled
// once per instruction set (see cpu_kernels.cpp) and picked at run time.
#pragma once

#include <cstdint>
#include <cstring>

#define SKTDTW_INLINE inline __attribute__((always_inline))
#define SKTDTW_LAMBDA_INLINE __attribute__((always_inline))

namespace sktdtw::simd {

template <class S> struct int_of;
template <> struct int_of<float> { using type = int32_t; };
template <> struct int_of<double> { using type = int64_t; };

// A vector of VB bytes of scalars S.
template <class S, int VB> struct vec_of {
  typedef S type __attribute__((vector_size(VB)));
  typedef typename int_of<S>::type itype __attribute__((vector_size(VB)));
  static constexpr int lanes = VB / static_cast<int>(sizeof(S));
};

template <class V, class S> SKTDTW_INLINE V loadu(const S* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// The first n lanes from p, the rest zero (a feature tail; zero weights add nothing).
template <class V, class S> SKTDTW_INLINE V load_part(const S* p, int64_t n) {
  V v = {};
  std::memcpy(&v, p, static_cast<size_t>(n) * sizeof(S));
  return v;
}
template <class V, class S> SKTDTW_INLINE void storeu(S* p, V v) { std::memcpy(p, &v, sizeof v); }
template <class V, class S> SKTDTW_INLINE void store_part(S* p, V v, int64_t n) {
  std::memcpy(p, &v, static_cast<size_t>(n) * sizeof(S));
}

// Lanes >= lanes - n set (all bits), the others zero: masks the last n lanes of a vector.
template <class S, int VB> SKTDTW_INLINE typename vec_of<S, VB>::type last_lanes(int64_t n) {
  using V = typename vec_of<S, VB>::type;
  using I = typename vec_of<S, VB>::itype;
  I lane;
  for (int l = 0; l < vec_of<S, VB>::lanes; ++l) lane[l] = l;
  return (V)(lane >= static_cast<typename int_of<S>::type>(vec_of<S, VB>::lanes - n));
}
template <class V> SKTDTW_INLINE V and_mask(V v, V mask) {
  using I = decltype(v < v);
  return (V)((I)v & (I)mask);
}

// |d| by clearing the sign bit: one instruction, no compare.
template <class S, int VB> SKTDTW_INLINE typename vec_of<S, VB>::type vabs(typename vec_of<S, VB>::type d) {
  using I = typename vec_of<S, VB>::itype;
  constexpr typename int_of<S>::type mask = ~(typename int_of<S>::type(1) << (8 * sizeof(S) - 1));
  return (typename vec_of<S, VB>::type)((I)d & mask);
}
// sign(d) with sign(0) = 0: 1.0 with d's sign bit, masked off where d == 0 (bit operations
// only, cheaper than two compares and blends).
template <class S, int VB> SKTDTW_INLINE typename vec_of<S, VB>::type vsign(typename vec_of<S, VB>::type d) {
  using V = typename vec_of<S, VB>::type;
  using I = typename vec_of<S, VB>::itype;
  const V one = V{} + S(1), zero = {}, minus_zero = -zero;  // (0 + -0 would be +0)
  return (V)((((I)d & (I)minus_zero) | (I)one) & (d != zero));
}
// Horizontal sum in a fixed lane order (determinism).
template <class S, int VB> SKTDTW_INLINE S hsum(typename vec_of<S, VB>::type v) {
  S s = 0;
  for (int l = 0; l < vec_of<S, VB>::lanes; ++l) s += v[l];
  return s;
}

}  // namespace sktdtw::simd
