"""Peak memory of the CPU ``path`` on one long series against many classes.

The CPU backend's cost-matrix workspace used to be K x L x T for a series of T steps (3.2 GB
for T = 100000, K = 1000, L = 8); it is now tiled over the classes, so it stays near
``max(4 MiB, threads x L x T)`` whatever K. Each measurement runs in its own process (peak
RSS is per process): the peak resident set size of the call, less that before it, for the
distances alone (inference) and with the paths (training's forward pass).

Usage::

    python benchmarks/bench_memory.py [--T 100000] [--K 1000] [--package-dir DIR --label L]

``--package-dir`` measures another copy of the package (a directory holding ``sktdtw/``
with its compiled ``_core``), e.g. an older commit built by hand, for a before/after
comparison; results are merged into ``benchmarks/results/bench_memory.json`` under
``--label``, with the machine, versions and commit.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "bench_memory.json"

_CHILD = r"""
import json, resource, sys, time
package_dir, T, K, L, F, with_path = sys.argv[1:]
if package_dir:
    # An editable install's import hook would load the installed sktdtw: use the copy.
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not type(f).__module__.startswith("_editable_skbc_")]
    sys.path.insert(0, package_dir)
import torch
from sktdtw.dtw import weighted_dtw, weighted_dtw_path
T, K, L, F = int(T), int(K), int(L), int(F)
g = torch.Generator().manual_seed(0)
X = [torch.randn(T, F, generator=g)]
C = torch.randn(K, L, F, generator=g)
W = torch.rand(K, L, F, generator=g) + 0.5
op = weighted_dtw_path if with_path == "1" else weighted_dtw
op(X, C[:1], W[:1], backend="cpu")  # load everything once
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
with torch.no_grad():
    op(X, C, W, backend="cpu")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import sktdtw
print(json.dumps({"peak_rss_mib": peak / 1024, "call_rss_increase_mib": (peak - before) / 1024,
                  "seconds": seconds, "sktdtw_file": sktdtw.__file__}))
"""


def _commit():
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=HERE, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def measure(package_dir, T, K, L, F, with_path):
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, package_dir or "", str(T), str(K), str(L), str(F),
         "1" if with_path else "0"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=100_000)
    parser.add_argument("--K", type=int, default=1000)
    parser.add_argument("--L", type=int, default=8)
    parser.add_argument("--F", type=int, default=4)
    parser.add_argument("--package-dir", default=None)
    parser.add_argument("--label", default="this commit")
    args = parser.parse_args()

    import torch

    from sktdtw.dtw import get_num_threads

    runs = {
        kind: measure(args.package_dir, args.T, args.K, args.L, args.F, kind == "with path")
        for kind in ("distances", "with path")
    }
    for kind, run in runs.items():
        print(f"{args.label}, {kind}: peak RSS {run['peak_rss_mib']:.0f} MiB (+"
              f"{run['call_rss_increase_mib']:.0f} MiB in the call), {run['seconds']:.2f} s")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["problem"] = {"T": args.T, "K": args.K, "L": args.L, "F": args.F,
                          "workspace_before_tiling_mib": args.K * args.L * args.T * 4 / 2**20}
    results["machine"] = {
        "platform": platform.platform(), "cores": os.cpu_count(),
        "kernel_threads": get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__,
    }
    results.setdefault("runs", {})[args.label] = {"commit": _commit(), **runs}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
