"""Speed of the weighted-DTW op on the paper's workload shapes, side by side in one run.

1. One FECW training epoch on HMDB51 shapes (B=3570, K=51, L=8, T=33, F=1459, synthetic
   data, batches of 48): path under the epoch-frozen parameters, cost of that path under the
   live parameters, z-score cross-entropy, backward. For the chosen backend, and for the
   pure-PyTorch reference on a few batches (scaled to the epoch). A per-primitive breakdown
   gives the cost matrix's feature-terms per second as a fraction of this machine's in-cache
   limit (``benchmarks/tools/l1_roofline.sh``).
2. (CPU) The unit-weight, diagonal=True distance matrix between the B samples and K
   centroid series, sktdtw against tslearn, aeon and dtaidistance, at F=1459 and F=12.
3. The same epoch on Kinetics-400 shapes (B=240436, K=400, F=1808), timed on a fraction
   of the epoch's batches and scaled (by default on CUDA only; ``--kinetics-batches N``).

Writes ``benchmarks/results/bench_dtw_<device>.json`` with the machine, versions and commit.

    python benchmarks/bench_dtw.py                 # CPU, full size
    python benchmarks/bench_dtw.py --device cuda   # on a GPU
    python benchmarks/bench_dtw.py --quick         # a smoke run on small shapes
"""

import argparse
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

import sktdtw
from sktdtw.dtw import PackedBatch, get_num_threads, weighted_dtw
from sktdtw.dtw._backends import get_backend

HERE = Path(__file__).resolve().parent
HMDB51 = dict(name="HMDB51", B=3570, K=51, L=8, T=33, F=1459)
KINETICS400 = dict(name="Kinetics-400", B=240436, K=400, L=8, T=33, F=1808)
BATCH_SIZE = 48


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def machine(device):
    cpu = platform.processor()
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    info = {
        "platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
        "kernel_threads": get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__, "numpy": np.__version__, "sktdtw": sktdtw.__version__,
        "commit": git_commit(),
    }
    try:
        from sktdtw import _core
        info["cpu_isa"] = _core.cpu_isa()
    except ImportError:
        info["cpu_isa"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["gpu_sms"] = props.multi_processor_count
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True)
            driver, clock = smi.stdout.strip().splitlines()[0].split(", ")
            info["driver"] = driver
            info["gpu_max_sm_clock_mhz"] = int(clock)
        except (OSError, ValueError, IndexError):
            pass
    return info


def cpu_roofline():
    """This machine's in-cache limit for sum_f w|c - x| in feature-terms/s, or None."""
    script = HERE / "tools" / "l1_roofline.sh"
    if not script.exists():
        return None
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True).stdout
    match = re.search(r"limit:\s*([\d.]+)\s*G", out)
    return float(match.group(1)) * 1e9 if match else None


def gpu_fp32_peak(device):
    """FP32 FMA peak in feature-terms/s: one term is one FMA plus a subtract and an abs, so
    the peak counts 128 FP32 lanes per SM and clock, one term per lane per 3 instructions."""
    props = torch.cuda.get_device_properties(device)
    clock = machine(device).get("gpu_max_sm_clock_mhz")
    if not clock:
        return None
    flops = props.multi_processor_count * 128 * 2 * clock * 1e6  # FMA = 2 flops
    return {"fp32_peak_tflops": flops / 1e12, "terms_per_s_at_peak": flops / 2 / 3}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def current_rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Workload:
    """Synthetic data of a workload's shape. `pool` samples are generated; batch i takes
    samples (i * BATCH_SIZE) mod pool onward, so huge epochs need not fit in memory.

    Plain tensors of F features: the op lays them out for its backend (and times that)."""

    def __init__(self, shape, device, pool=None, seed=0):
        self.shape, self.device = shape, device
        g = torch.Generator().manual_seed(seed)
        B, K, L, T, F = (shape[k] for k in "BKLTF")
        self.pool = min(B, pool or B)
        self.values = torch.randn(self.pool * T, F, generator=g).to(device)
        self.offsets = torch.arange(0, self.pool * T + 1, T, device=device)
        self.labels = torch.randint(0, K, (self.pool,), generator=g).to(device)
        self.C = torch.randn(K, L, F, generator=g).to(device)
        self.V = torch.randn(K, L, F, generator=g).to(device)
        self.n_batches = math.ceil(B / BATCH_SIZE)

    def batch(self, i):
        s = (i * BATCH_SIZE) % self.pool
        e = min(s + BATCH_SIZE, self.pool)
        off = self.offsets[s:e + 1]
        return PackedBatch(self.values[off[0]:off[-1]], off - off[0]), self.labels[s:e]

    def terms(self, n_batches):
        """Feature-terms of the cost matrix and of the path cells over n_batches."""
        B, K, L, T, F = (self.shape[k] for k in "BKLTF")
        samples = min(B, n_batches * BATCH_SIZE)
        return samples * T * K * L * F, samples * K * (L + T - 1) * F


def fecw_epoch(work, backend, n_batches):
    """Forward + backward of a FECW epoch over n_batches; returns seconds."""
    C = work.C.clone().requires_grad_()
    V = work.V.clone().requires_grad_()
    Cf, Wf = work.C.clone(), work.V.exp()  # frozen at the start of the epoch
    sync(work.device)
    t0 = time.perf_counter()
    for i in range(n_batches):
        batch, y = work.batch(i)
        dist = weighted_dtw(batch, C, V.exp(), path_centroids=Cf, path_weights=Wf,
                            backend=backend, check_input=False)
        z = -(dist - dist.mean(1, keepdim=True)) / (dist.std(1, keepdim=True) + 1e-6)
        loss = torch.nn.functional.cross_entropy(z, y)
        C.grad = V.grad = None
        loss.backward()
    sync(work.device)
    return time.perf_counter() - t0


def primitive_breakdown(work, backend, n_batches):
    """Seconds spent in path / path_cost / path_grad over n_batches, each timed alone."""
    be = get_backend(backend, work.device)
    W = work.V.exp()
    seconds = dict(path=0.0, path_cost=0.0, path_grad=0.0)

    def timed(name, call):
        sync(work.device)
        t0 = time.perf_counter()
        out = call()
        sync(work.device)
        seconds[name] += time.perf_counter() - t0
        return out

    for i in range(n_batches):
        batch, _ = work.batch(i)
        G = torch.randn(batch.n_samples, work.shape["K"], device=work.device)
        # partial binds this batch's arguments (and the path just found) when it is built.
        path = timed("path", partial(be.path, *batch, work.C, W, False))[1]
        timed("path_cost", partial(be.path_cost, *batch, work.C, W, path))
        timed("path_grad", partial(be.path_grad, *batch, work.C, W, path, G, False))
    return seconds


def epoch_report(work, backend, measured_batches, repeats):
    n = work.n_batches
    measured_batches = min(measured_batches, n)
    fecw_epoch(work, backend, min(2, measured_batches))  # warm-up (allocations, caches)
    rss0 = current_rss_mb()
    if work.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(work.device)
    times = [fecw_epoch(work, backend, measured_batches) for _ in range(repeats)]
    best = min(times) * n / measured_batches
    cost_terms, path_terms = work.terms(n)
    parts = primitive_breakdown(work, backend, min(measured_batches, 15))
    scale = n / min(measured_batches, 15)
    parts = {k: v * scale for k, v in parts.items()}
    report = {
        "backend": backend,
        "batches_measured": measured_batches,
        "batches_per_epoch": n,
        "scaled_from_fraction": measured_batches < n,
        "epoch_seconds": best,
        "epoch_seconds_all_repeats": [t * n / measured_batches for t in times],
        "primitive_seconds": parts,
        "cost_matrix_feature_terms": cost_terms,
        "path_feature_terms": path_terms,
        "cost_matrix_terms_per_s": cost_terms / parts["path"],
        "path_cost_terms_per_s": path_terms / parts["path_cost"],
        "path_grad_terms_per_s": path_terms / parts["path_grad"],
        "epoch_terms_per_s": (cost_terms + 2 * path_terms) / best,
    }
    if work.device.type == "cuda":
        report["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(work.device) / 2**20
    else:
        report["peak_rss_mb"] = peak_rss_mb()
        report["rss_before_epoch_mb"] = rss0
    return report


def library_distance_matrix(F, n_samples, K, L, T, budget_s):
    """Unit-weight diagonal DTW distance matrix (n_samples x K): seconds per 1e6 pairs."""
    g = np.random.default_rng(F)
    X = g.normal(size=(n_samples, T, F)).astype(np.float32)
    C = g.normal(size=(K, L, F)).astype(np.float32)
    results = {}

    Ct, Wt = torch.from_numpy(C), torch.ones(K, L, F)
    weighted_dtw(X[:2], Ct, Wt, diagonal=True, backend="cpu")  # warm-up, as for the others
    t0 = time.perf_counter()
    weighted_dtw(np.ascontiguousarray(X), Ct, Wt, diagonal=True, backend="cpu")
    results["sktdtw (cpu, L1)"] = (time.perf_counter() - t0) / (n_samples * K) * 1e6

    def timed(name, fn, n_max):
        fn(X[:2].astype(np.float64), C.astype(np.float64))  # JIT warm-up
        n = 4
        while True:  # grow the subset until the call takes a measurable share of the budget
            Xs = X[:n].astype(np.float64)
            t0 = time.perf_counter()
            fn(Xs, C.astype(np.float64))
            dt = time.perf_counter() - t0
            if dt > budget_s / 4 or n >= n_max:
                results[name] = dt / (n * K) * 1e6
                return
            n = min(n_max, n * 4)

    try:
        from tslearn.metrics import cdist_dtw
        timed("tslearn cdist_dtw (sq. Euclidean)",
              lambda Xs, Cs: cdist_dtw(Cs, Xs, n_jobs=2), n_samples)
    except ImportError:
        pass
    try:
        from aeon.distances import dtw_pairwise_distance
        timed("aeon dtw_pairwise_distance (sq. Euclidean)",
              lambda Xs, Cs: dtw_pairwise_distance(Cs.transpose(0, 2, 1), Xs.transpose(0, 2, 1),
                                                   n_jobs=2),
              n_samples)
    except ImportError:
        pass
    try:
        from dtaidistance import dtw_ndim

        def dtai(Xs, Cs):
            series = [np.ascontiguousarray(s) for s in Cs] + [np.ascontiguousarray(s) for s in Xs]
            block = ((0, len(Cs)), (len(Cs), len(series)))
            return dtw_ndim.distance_matrix_fast(series, block=block, parallel=True)
        timed("dtaidistance distance_matrix_fast (sq. Euclidean)", dtai, n_samples)
    except ImportError:
        pass
    ours = results["sktdtw (cpu, L1)"]
    others = {k: v for k, v in results.items() if not k.startswith("sktdtw")}
    fastest = min(others, key=others.get) if others else None
    return {
        "n_features": F, "n_samples": n_samples, "n_centroids": K, "L": L, "T": T,
        "seconds_per_million_pairs": results,
        "fastest_other": fastest,
        "speedup_vs_fastest_other": others[fastest] / ours if fastest else None,
        "note": "each library's own fastest multivariate DTW matrix routine with diagonal "
                "moves; tslearn, aeon and dtaidistance use a squared-Euclidean point cost "
                "(same F terms per cell), sktdtw the L1 cost; competitors timed on a subset "
                "of the samples (per-pair time is what is compared), numba JIT warmed up",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="small shapes, for a smoke run")
    parser.add_argument("--torch-batches", type=int, default=2,
                        help="batches of the pure-PyTorch reference to time (scaled to the epoch)")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed; the best is kept")
    parser.add_argument("--kinetics-batches", type=int, default=None,
                        help="Kinetics-400 batches timed and scaled to the epoch "
                             "(default: 300 on cuda, 0 = skipped on cpu)")
    parser.add_argument("--no-libraries", action="store_true", help="skip the library comparison")
    parser.add_argument("--out", type=Path,
                        help="JSON path (default benchmarks/results/bench_dtw_<device>.json)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    backend = args.device
    shape = dict(HMDB51, B=240) if args.quick else HMDB51
    result = {"benchmark": "bench_dtw", "machine": machine(device),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": args.quick}
    print(f"# {result['machine']}", flush=True)

    if device.type == "cpu":
        limit = cpu_roofline()
        result["roofline_terms_per_s"] = limit
        print(f"in-cache roofline: {limit / 1e9 if limit else float('nan'):.1f} G feature-terms/s")

    work = Workload(shape, device)
    result["hmdb51_shape"] = shape
    rep = epoch_report(work, backend, work.n_batches, 1 if args.quick else args.repeats)
    if device.type == "cpu" and result.get("roofline_terms_per_s"):
        rep["cost_matrix_fraction_of_roofline"] = (
            rep["cost_matrix_terms_per_s"] / result["roofline_terms_per_s"])
    if device.type == "cuda":
        peak = gpu_fp32_peak(device)
        if peak:
            rep.update(peak)
            rep["cost_matrix_fraction_of_fp32_peak"] = (
                rep["cost_matrix_terms_per_s"] / peak["terms_per_s_at_peak"])
    result[f"hmdb51_fecw_epoch_{backend}"] = rep
    roofline = rep.get("cost_matrix_fraction_of_roofline")
    primitives = ", ".join(f"{k} {v:.3f} s" for k, v in rep["primitive_seconds"].items())
    print(f"HMDB51 FECW epoch, {backend}: {rep['epoch_seconds']:.3f} s "
          f"(cost matrix {rep['cost_matrix_terms_per_s'] / 1e9:.1f} G terms/s"
          + (f", {roofline:.0%} of roofline" if roofline is not None else "")
          + f"; primitives {primitives})", flush=True)

    torch_rep = epoch_report(work, "torch", args.torch_batches, 1)
    result[f"hmdb51_fecw_epoch_torch_{args.device}"] = torch_rep
    print(f"HMDB51 FECW epoch, torch reference (from {args.torch_batches} batches): "
          f"{torch_rep['epoch_seconds']:.1f} s -> speed-up "
          f"{torch_rep['epoch_seconds'] / rep['epoch_seconds']:.0f}x",
          flush=True)
    del work

    kinetics_batches = args.kinetics_batches
    if kinetics_batches is None:
        kinetics_batches = 300 if device.type == "cuda" else 0
    if kinetics_batches > 0:
        # The data set (57 GB) cannot be held: a pool of samples is cycled through.
        kin = Workload(KINETICS400, device, pool=min(8192, kinetics_batches * BATCH_SIZE))
        krep = epoch_report(kin, backend, kinetics_batches, args.repeats)
        result[f"kinetics400_fecw_epoch_{backend}"] = krep
        print(f"Kinetics-400 FECW epoch, {backend} (from {krep['batches_measured']} of "
              f"{krep['batches_per_epoch']} batches): {krep['epoch_seconds']:.2f} s", flush=True)
        del kin

    if device.type == "cpu" and not args.no_libraries:
        n = 96 if args.quick else HMDB51["B"]
        result["distance_matrix"] = []
        for F in (HMDB51["F"], 12):
            lib = library_distance_matrix(F, n, HMDB51["K"], HMDB51["L"], HMDB51["T"],
                                          budget_s=2 if args.quick else 20)
            result["distance_matrix"].append(lib)
            print(f"distance matrix F={F}: " + ", ".join(
                f"{k} {v:.2f} s/1e6 pairs" for k, v in lib["seconds_per_million_pairs"].items())
                + f" -> sktdtw {lib['speedup_vs_fastest_other']:.1f}x faster than "
                  f"{lib['fastest_other']}",
                flush=True)

    suffix = "_quick" if args.quick else ""
    out = args.out or HERE / "results" / f"bench_dtw_{args.device}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
