// pybind11 bindings of the compiled core (sktdtw._core).
//
// Tensors cross as raw data pointers plus sizes: the Python backends allocate every output
// and workspace with PyTorch, check dtype, device and contiguity, and keep the tensors alive
// for the duration of the call. The GIL is released while kernels run.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "cpu_kernels.h"
#ifdef SKTDTW_WITH_CUDA
#include "cuda_kernels.h"
#endif

namespace py = pybind11;
using std::int64_t;
using std::uintptr_t;

namespace {

template <class S> const S* in(uintptr_t p) { return reinterpret_cast<const S*>(p); }
template <class S> S* out(uintptr_t p) { return reinterpret_cast<S*>(p); }

// Calls f with a null pointer of the scalar type named by `is_double`.
template <class Fn> void with_scalar(bool is_double, Fn&& f) {
  if (is_double)
    f(static_cast<double*>(nullptr));
  else
    f(static_cast<float*>(nullptr));
}

template <class S> using Batch = sktdtw::cpu::Batch<S>;
template <class S> using Params = sktdtw::cpu::Params<S>;

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled kernels of sktdtw's weighted-DTW op (private; use sktdtw.dtw).";
  namespace cpu = sktdtw::cpu;

  m.def("cpu_path", [](bool is_double, uintptr_t values, uintptr_t offsets, int64_t n_samples,
                       int64_t n_features, uintptr_t C, uintptr_t W, int64_t K, int64_t L,
                       bool diagonal, uintptr_t workspace, int64_t workspace_size, uintptr_t dist,
                       uintptr_t path) {
    py::gil_scoped_release nogil;
    with_scalar(is_double, [&](auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      cpu::path<S>(Batch<S>{in<S>(values), in<int64_t>(offsets), n_samples, n_features},
                   Params<S>{in<S>(C), in<S>(W), K, L}, diagonal, out<S>(workspace),
                   workspace_size, out<S>(dist), out<int32_t>(path));
    });
  });
  m.def("cpu_path_cost", [](bool is_double, uintptr_t values, uintptr_t offsets, int64_t n_samples,
                            int64_t n_features, uintptr_t C, uintptr_t W, int64_t K, int64_t L,
                            uintptr_t path, uintptr_t dist) {
    py::gil_scoped_release nogil;
    with_scalar(is_double, [&](auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      const Batch<S> x{in<S>(values), in<int64_t>(offsets), n_samples, n_features};
      const Params<S> p{in<S>(C), in<S>(W), K, L};
      cpu::check_paths<S>(x, p, in<int32_t>(path));
      cpu::path_cost<S>(x, p, in<int32_t>(path), out<S>(dist));
    });
  });
  m.def("cpu_path_grad", [](bool is_double, uintptr_t values, uintptr_t offsets, int64_t n_samples,
                            int64_t n_features, uintptr_t C, uintptr_t W, int64_t K, int64_t L,
                            uintptr_t path, uintptr_t grad_dist, uintptr_t dC, uintptr_t dW,
                            uintptr_t dX) {
    py::gil_scoped_release nogil;
    with_scalar(is_double, [&](auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      const Batch<S> x{in<S>(values), in<int64_t>(offsets), n_samples, n_features};
      const Params<S> p{in<S>(C), in<S>(W), K, L};
      cpu::check_paths<S>(x, p, in<int32_t>(path));
      cpu::path_grad<S>(x, p, in<int32_t>(path), in<S>(grad_dist), out<S>(dC), out<S>(dW),
                        dX ? out<S>(dX) : nullptr);
    });
  });
  m.def("set_num_threads", &cpu::set_num_threads, py::arg("n"),
        "Threads used by the CPU kernels; 0 restores OpenMP's default.");
  m.def("get_num_threads", &cpu::get_num_threads);
  m.def("cpu_isa", &cpu::isa_name, "Instruction set the CPU kernels dispatched to.");
  m.def("cpu_vector_lanes", &cpu::vector_lanes, py::arg("is_double"),
        "Scalars per SIMD vector of the dispatched instruction set.");

#ifdef SKTDTW_WITH_CUDA
  // Same calling convention, all pointers on the device, plus the current CUDA stream
  // (torch.cuda.current_stream(device).cuda_stream) that every kernel is queued on. The
  // calls return once the kernels are queued; PyTorch's stream order does the rest.
  namespace cuda = sktdtw::cuda;
  m.def("cuda_path", [](bool is_double, uintptr_t values, uintptr_t offsets, int64_t n_samples,
                        int64_t n_rows, int64_t n_features, int64_t row_base, uintptr_t C,
                        uintptr_t W, int64_t K, int64_t L, bool diagonal, uintptr_t workspace,
                        uintptr_t dist, uintptr_t path, uintptr_t stream) {
    py::gil_scoped_release nogil;
    with_scalar(is_double, [&](auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      cuda::path<S>(cuda::Batch<S>{in<S>(values), in<int64_t>(offsets), n_samples, n_rows,
                                   n_features, row_base},
                    cuda::Params<S>{in<S>(C), in<S>(W), K, L}, diagonal, out<S>(workspace),
                    out<S>(dist), out<int32_t>(path), stream);
    });
  });
  m.def("cuda_path_cost", [](bool is_double, uintptr_t values, uintptr_t offsets,
                             int64_t n_samples, int64_t n_rows, int64_t n_features,
                             int64_t row_base, uintptr_t C, uintptr_t W, int64_t K, int64_t L,
                             uintptr_t path, uintptr_t dist, uintptr_t stream) {
    py::gil_scoped_release nogil;
    with_scalar(is_double, [&](auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      cuda::path_cost<S>(cuda::Batch<S>{in<S>(values), in<int64_t>(offsets), n_samples, n_rows,
                                        n_features, row_base},
                         cuda::Params<S>{in<S>(C), in<S>(W), K, L}, in<int32_t>(path),
                         out<S>(dist), stream);
    });
  });
  // dC/dW are skipped when their pointers are 0, dX when its pointer is 0 (dX needs
  // index_workspace: 2 * K * n_rows int32).
  m.def("cuda_path_grad", [](bool is_double, uintptr_t values, uintptr_t offsets,
                             int64_t n_samples, int64_t n_rows, int64_t n_features,
                             int64_t row_base, uintptr_t C, uintptr_t W, int64_t K, int64_t L,
                             uintptr_t path, uintptr_t grad_dist, uintptr_t dC, uintptr_t dW,
                             uintptr_t dX, uintptr_t index_workspace, uintptr_t stream) {
    py::gil_scoped_release nogil;
    with_scalar(is_double, [&](auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      cuda::path_grad<S>(cuda::Batch<S>{in<S>(values), in<int64_t>(offsets), n_samples, n_rows,
                                        n_features, row_base},
                         cuda::Params<S>{in<S>(C), in<S>(W), K, L}, in<int32_t>(path),
                         in<S>(grad_dist), dC ? out<S>(dC) : nullptr,
                         dW ? out<S>(dW) : nullptr, dX ? out<S>(dX) : nullptr,
                         index_workspace ? out<int32_t>(index_workspace) : nullptr, stream);
    });
  });
  m.def("cuda_device_count", &cuda::device_count,
        "CUDA devices this module's runtime sees (0 without a GPU or with a too-old driver).");
  m.attr("has_cuda") = true;
#else
  m.attr("has_cuda") = false;
#endif
}
