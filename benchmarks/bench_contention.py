"""A fit on a shared machine: default threads against one thread, idle and beside a busy job.

Users fit next to other work (a data loader, ``GridSearchCV(n_jobs=...)``, another user's
job). The default thread count must never make a fit slower than one thread would. Each
fit runs in its own child process, with the default threads and with
``OMP_NUM_THREADS=1``, first on an idle machine and then beside ``--competitors`` busy
processes (pure-Python loops, one core each); this tree side by side with another one.

    python benchmarks/bench_contention.py                      # this tree
    python benchmarks/bench_contention.py --against /tmp/old   # and an older tree

Writes ``benchmarks/results/bench_contention.json`` with the machine, versions and commit.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from bench_dtw import git_commit, machine

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import json, sys, time
if sys.argv[1]:  # another tree: bypass the editable install's redirect to this checkout
    sys.meta_path[:] = [f for f in sys.meta_path
                        if type(f).__name__ != "ScikitBuildRedirectingFinder"]
    sys.path.insert(0, sys.argv[1])
from sktdtw import DejaVidClassifier
from sktdtw.datasets import make_temporal_order
from sktdtw.dtw import get_num_threads

X, y = make_temporal_order(n_samples=160, n_classes=4, n_features=3, min_length=40,
                           max_length=120, random_state=0)
clf = DejaVidClassifier(max_epochs=15, cv=None, random_state=0)
start = time.perf_counter()
clf.fit(X, y)
print(json.dumps({"fit_s": time.perf_counter() - start, "threads": get_num_threads()}))
"""

_BUSY = "while True: pass"


def _fit(tree, one_thread):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if one_thread:
        env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", _CHILD, tree or ""], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=None, help="tree holding another sktdtw/")
    parser.add_argument("--competitors", type=int, default=1, help="busy processes beside")
    parser.add_argument("--rounds", type=int, default=3, help="fits per setting; best kept")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_contention.json")
    args = parser.parse_args(argv)

    versions = {"this": None} | ({"against": args.against} if args.against else {})
    results = {}
    for condition in ("idle", f"beside {args.competitors} busy process(es)"):
        busy = [] if condition == "idle" else [
            subprocess.Popen([sys.executable, "-c", _BUSY]) for _ in range(args.competitors)
        ]
        try:
            times = {(v, t): [] for v in versions for t in ("default", "1 thread")}
            for _ in range(args.rounds):
                for version, tree in versions.items():
                    for threads in ("default", "1 thread"):
                        times[version, threads].append(_fit(tree, threads == "1 thread"))
        finally:
            for process in busy:
                process.kill()
                process.wait()
        for version in versions:
            default = min(r["fit_s"] for r in times[version, "default"])
            single = min(r["fit_s"] for r in times[version, "1 thread"])
            row = {"default_threads_fit_s": default, "one_thread_fit_s": single,
                   "default_threads": times[version, "default"][0]["threads"],
                   "default_over_one_thread": default / single}
            results.setdefault(version, {})[condition] = row
            print(f"{version:8s} {condition:28s} default {default:6.2f} s  "
                  f"1 thread {single:6.2f} s  ratio {default / single:5.2f}")
    report = {"machine": machine(torch.device("cpu")), "commit": git_commit(),
              "against": args.against, "rounds": args.rounds, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
