// pybind11 bindings of the compiled core (sktdtw._core).
//
// Tensors cross as raw data pointers plus sizes: the Python backends allocate every output
// and workspace with PyTorch, check dtype, device, contiguity and paths, and keep the
// tensors alive for the duration of the call. The GIL is released while kernels run.
//
// Every primitive is called from Python as name(batch, *rest): `batch` is the tuple
// (is_double, values, offsets, n_samples, n_rows, n_features, row_base, centroids, weights,
// n_classes, length) that dtw_batch.h's Batch and Params are built from, and `rest` are the
// primitive's own arguments, pointers passed as integers (0 for a null pointer).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <tuple>
#include <type_traits>

#include "cpu_kernels.h"
#ifdef SKTDTW_WITH_CUDA
#include "cuda_kernels.h"
#endif

namespace py = pybind11;
using std::int64_t;
using std::uintptr_t;

namespace {

using BatchArgs = std::tuple<bool, uintptr_t, uintptr_t, int64_t, int64_t, int64_t, int64_t,
                             uintptr_t, uintptr_t, int64_t, int64_t>;

template <class S> sktdtw::Batch<S> batch_of(const BatchArgs& a) {
  return {reinterpret_cast<const S*>(std::get<1>(a)), reinterpret_cast<const int64_t*>(std::get<2>(a)),
          std::get<3>(a), std::get<4>(a), std::get<5>(a), std::get<6>(a)};
}
template <class S> sktdtw::Params<S> params_of(const BatchArgs& a) {
  return {reinterpret_cast<const S*>(std::get<7>(a)), reinterpret_cast<const S*>(std::get<8>(a)),
          std::get<9>(a), std::get<10>(a)};
}

// A primitive's own argument as Python passes it: pointers as integers, the rest as is.
template <class T> struct from_python { using type = T; };
template <class T> struct from_python<T*> { using type = uintptr_t; };
template <class T> T converted(typename from_python<T>::type v) {
  if constexpr (std::is_pointer_v<T>)
    return reinterpret_cast<T>(v);
  else
    return v;
}

// Binds `name` to the float and double instantiations of one primitive; is_double picks.
template <class... Rest32, class... Rest64>
void def_primitive(py::module_& m, const char* name,
                   void (*f32)(const sktdtw::Batch<float>&, const sktdtw::Params<float>&, Rest32...),
                   void (*f64)(const sktdtw::Batch<double>&, const sktdtw::Params<double>&, Rest64...)) {
  static_assert(sizeof...(Rest32) == sizeof...(Rest64), "one primitive, two scalar types");
  m.def(name, [f32, f64](const BatchArgs& a, typename from_python<Rest32>::type... rest) {
    py::gil_scoped_release nogil;
    if (std::get<0>(a))
      f64(batch_of<double>(a), params_of<double>(a), converted<Rest64>(rest)...);
    else
      f32(batch_of<float>(a), params_of<float>(a), converted<Rest32>(rest)...);
  });
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled kernels of sktdtw's weighted-DTW op (private; use sktdtw.dtw).";
  namespace cpu = sktdtw::cpu;
  def_primitive(m, "cpu_path", cpu::path<float>, cpu::path<double>);
  def_primitive(m, "cpu_path_cost", cpu::path_cost<float>, cpu::path_cost<double>);
  def_primitive(m, "cpu_path_grad", cpu::path_grad<float>, cpu::path_grad<double>);
  m.def("set_num_threads", &cpu::set_num_threads, py::arg("n"),
        "Threads used by the CPU kernels; 0 restores OpenMP's default.");
  m.def("get_num_threads", &cpu::get_num_threads);
  m.def("cpu_isa", &cpu::isa_name, "Instruction set the CPU kernels dispatched to.");
  m.attr("cpu_sequential_features") = cpu::kSequentialFeatures;

#ifdef SKTDTW_WITH_CUDA
  // The same primitives on device pointers, plus the current CUDA stream
  // (torch.cuda.current_stream(device).cuda_stream) that every kernel is queued on. The
  // calls return once the kernels are queued; PyTorch's stream order does the rest.
  namespace cuda = sktdtw::cuda;
  def_primitive(m, "cuda_path", cuda::path<float>, cuda::path<double>);
  def_primitive(m, "cuda_path_cost", cuda::path_cost<float>, cuda::path_cost<double>);
  def_primitive(m, "cuda_path_grad", cuda::path_grad<float>, cuda::path_grad<double>);
  m.def("cuda_device_count", &cuda::device_count,
        "CUDA devices this module's runtime sees (0 without a GPU or with a too-old driver).");
  m.attr("has_cuda") = true;
#else
  m.attr("has_cuda") = false;
#endif
}
