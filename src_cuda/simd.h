// Portable SIMD through GCC/Clang vector extensions: the same kernel source is compiled
// once per instruction set (see cpu_kernels.cpp) and picked at run time.
#pragma once

#include <cstdint>
#include <cstring>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

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
// Lane by lane: a memcpy of a run-time length would be a library call.
template <class V, class S> SKTDTW_INLINE V load_part(const S* p, int64_t n) {
  V v = {};
  for (int64_t l = 0; l < n; ++l) v[l] = p[l];
  return v;
}
template <class V, class S> SKTDTW_INLINE void storeu(S* p, V v) { std::memcpy(p, &v, sizeof v); }
template <class V, class S> SKTDTW_INLINE void store_part(S* p, V v, int64_t n) {
  for (int64_t l = 0; l < n; ++l) p[l] = v[l];
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
#if defined(__x86_64__) || defined(_M_X64)
// (a & b) | c in one instruction (the compilers we build with do not fuse the two).
__attribute__((target("avx512f"))) inline __m512i or_and(__m512i a, __m512i b, __m512i c) {
  return _mm512_ternarylogic_epi32(a, b, c, 0xEA);
}
#endif
#if defined(__x86_64__) || defined(_M_X64)
// One bit per lane of a comparison's mask (lane l -> bit l).
__attribute__((target("avx512f,avx512dq"))) inline uint32_t lane_bits(__m512i m, float) {
  return _mm512_movepi32_mask(m);
}
__attribute__((target("avx512f,avx512dq"))) inline uint32_t lane_bits(__m512i m, double) {
  return _mm512_movepi64_mask(m);
}
__attribute__((target("avx2"))) inline uint32_t lane_bits(__m256i m, float) {
  return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(m)));
}
__attribute__((target("avx2"))) inline uint32_t lane_bits(__m256i m, double) {
  return static_cast<uint32_t>(_mm256_movemask_pd(_mm256_castsi256_pd(m)));
}
inline uint32_t lane_bits(__m128i m, float) {
  return static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(m)));
}
inline uint32_t lane_bits(__m128i m, double) {
  return static_cast<uint32_t>(_mm_movemask_pd(_mm_castsi128_pd(m)));
}
#endif
template <class S, int VB> SKTDTW_INLINE uint32_t lane_bits(typename vec_of<S, VB>::itype m) {
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (VB == 64) return lane_bits((__m512i)m, S{});
  if constexpr (VB == 32) return lane_bits((__m256i)m, S{});
  if constexpr (VB == 16) return lane_bits((__m128i)m, S{});
#endif
  uint32_t bits = 0;
  for (int l = 0; l < vec_of<S, VB>::lanes; ++l) bits |= uint32_t(m[l] != 0) << l;
  return bits;
}

// 1.0 with d's sign bit (so -1 for -0): d * unit_sign(d) is |d| exactly.
template <class S, int VB> SKTDTW_INLINE typename vec_of<S, VB>::type unit_sign(typename vec_of<S, VB>::type d) {
  using V = typename vec_of<S, VB>::type;
  using I = typename vec_of<S, VB>::itype;
  const V one = V{} + S(1), minus_zero = -V{};  // (0 + -0 would be +0)
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (VB == 64) return (V)or_and((__m512i)d, (__m512i)minus_zero, (__m512i)one);
#endif
  return (V)(((I)d & (I)minus_zero) | (I)one);
}
// sign(d) with sign(0) = 0: unit_sign masked off where d == 0 (bit operations only,
// cheaper than two compares and blends).
template <class S, int VB> SKTDTW_INLINE typename vec_of<S, VB>::type vsign(typename vec_of<S, VB>::type d) {
  using V = typename vec_of<S, VB>::type;
  return and_mask(unit_sign<S, VB>(d), (V)(d != V{}));
}
// Horizontal sum in a fixed order (determinism): the upper half of the lanes is added to
// the lower half, down to one lane, so log2(lanes) vector adds instead of lanes - 1
// dependent scalar ones (which cost the cost matrix about a fifth of its time at F > 128).
template <class S, int VB> SKTDTW_INLINE S hsum(typename vec_of<S, VB>::type v) {
  if constexpr (VB == static_cast<int>(sizeof(S))) {
    return v[0];
  } else {
    using Half = typename vec_of<S, VB / 2>::type;
    Half lo, hi;
    std::memcpy(&lo, &v, sizeof lo);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
    return hsum<S, VB / 2>(lo + hi);
  }
}

}  // namespace sktdtw::simd
