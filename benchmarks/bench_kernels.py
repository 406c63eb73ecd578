"""The CPU primitives' speed at several feature counts, this tree side by side with another.

For each shape, ``path`` (cost matrix + DP + backtrack), ``path_cost`` and ``path_grad``
(without dX) are timed on one batch, best of ``--repeats``, in feature-terms per second
(cost matrix: K * L * sum(T_b) * F terms; the path primitives: the path's cells * F).
Each tree runs in its own child process, and the trees alternate shape by shape and round
by round, so a noisy machine slows both alike.

    python benchmarks/bench_kernels.py                      # this tree
    python benchmarks/bench_kernels.py --against /tmp/old   # and a tree holding an older
                                                            # sktdtw/ with its _core built

Writes ``benchmarks/results/bench_kernels.json`` with the machine, versions and commit.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from bench_dtw import cpu_roofline, git_commit, machine

HERE = Path(__file__).resolve().parent

# (name, B, K, L, T, F): one and few features with long series (ACSF1's 1460 steps, where
# the DP's chain of dependent cells bounds the speed), the middle, HMDB51.
SHAPES = [
    ("F=1, T=1460", 16, 20, 64, 1460, 1),
    ("F=2", 32, 8, 32, 300, 2),
    ("F=16", 32, 8, 32, 300, 16),
    ("F=70", 32, 8, 32, 200, 70),
    ("HMDB51 step (F=1459)", 48, 51, 8, 33, 1459),
]

_CHILD = r"""
import json, sys, time
if sys.argv[1]:  # another tree: bypass the editable install's redirect to this checkout
    sys.meta_path[:] = [f for f in sys.meta_path
                        if type(f).__name__ != "ScikitBuildRedirectingFinder"]
    sys.path.insert(0, sys.argv[1])
import torch
import sktdtw
from sktdtw import _core
from sktdtw.dtw._backends import get_backend

name, B, K, L, T, F = json.loads(sys.argv[2])
repeats, threads = int(sys.argv[3]), int(sys.argv[4])
if threads:
    _core.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
values = torch.randn(B * T, F, generator=g)
offsets = torch.arange(0, B * T + 1, T)
C = torch.randn(K, L, F, generator=g)
W = torch.rand(K, L, F, generator=g) + 0.5
G = torch.randn(B, K, generator=g)
be = get_backend("cpu", values.device)

def best(call):
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = call()
        seconds.append(time.perf_counter() - t0)
    return min(seconds), out

t_path, (dist, path) = best(lambda: be.path(values, offsets, C, W, False))
cells = int((path[..., 1] - path[..., 0] + 1).sum())
t_cost, _ = best(lambda: be.path_cost(values, offsets, C, W, path))
t_grad, _ = best(lambda: be.path_grad(values, offsets, C, W, path, G, False))
print(json.dumps({
    "sktdtw": sktdtw.__file__, "isa": _core.cpu_isa(), "threads": _core.get_num_threads(),
    "cost_matrix_terms_per_s": K * L * B * T * F / t_path,
    "path_cost_terms_per_s": cells * F / t_cost,
    "path_grad_terms_per_s": cells * F / t_grad,
}))
"""


def _run(tree, shape, repeats, threads):
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, tree or "", json.dumps(shape), str(repeats), str(threads)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=None, help="tree holding another sktdtw/")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the trees")
    parser.add_argument("--repeats", type=int, default=5, help="timings per child; best kept")
    parser.add_argument("--threads", type=int, default=0,
                        help="kernel threads (default 0: the kernels' default)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_kernels.json")
    args = parser.parse_args(argv)

    versions = {"this": None} | ({"against": args.against} if args.against else {})
    runs = {version: {s[0]: [] for s in SHAPES} for version in versions}
    for _ in range(args.rounds):
        for shape in SHAPES:
            for version, tree in versions.items():
                runs[version][shape[0]].append(_run(tree, shape, args.repeats, args.threads))

    roofline = cpu_roofline()
    results = {}
    for version, by_shape in runs.items():
        results[version] = {}
        for name, samples in by_shape.items():
            row = {key: max(s[key] for s in samples) for key in samples[0] if key.endswith("_s")}
            row |= {"isa": samples[0]["isa"], "threads": samples[0]["threads"]}
            if roofline:
                row["cost_matrix_fraction_of_roofline"] = row["cost_matrix_terms_per_s"] / roofline
            results[version][name] = row
            print(f"{version:8s} {name:22s} " + "  ".join(
                f"{key.replace('_terms_per_s', '')} {row[key] / 1e9:6.2f} G/s"
                for key in row if key.endswith("_per_s")))
    report = {
        "machine": machine(torch.device("cpu")), "commit": git_commit(), "against": args.against,
        "roofline_terms_per_s": roofline, "shapes": {s[0]: s[1:] for s in SHAPES},
        "rounds": args.rounds, "repeats": args.repeats, "threads": args.threads,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
