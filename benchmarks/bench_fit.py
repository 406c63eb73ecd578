"""Wall time of DejaVidClassifier.fit and predict, optionally side by side with another
version of sktdtw (to check that a change of the estimator's code costs no speed).

Usage::

    python benchmarks/bench_fit.py                      # this checkout
    python benchmarks/bench_fit.py --against /tmp/old   # and a tree holding an older
                                                        # sktdtw/ (with its built _core)

Every configuration (``--configs`` picks some) runs in a fresh process, alternating the
versions, ``--repeats`` times; the JSON (``benchmarks/results/bench_fit.json``) holds every
time, the best of each, the test accuracy and a digest of the fitted centroids (equal
digests: the same model).
"""

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

from bench_dtw import machine

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = {
    "3 features, defaults without cross-fits": dict(n_features=3, params={}),
    "70 features": dict(n_features=70, params={}),
    "lazy input, validation split": dict(
        n_features=8, params={"validation_fraction": 0.2}, lazy=True
    ),
    # Long series, where the DP bounds the speed: aeon's ACSF1 (100 series of 1460 steps).
    "ACSF1, the defaults (cross-fits, 72 epochs)": dict(
        aeon="ACSF1", params={"max_epochs": 72, "cv": 3}
    ),
    # 2 features (the series and its derivative) of 427 steps, 18 prototypes.
    "OSULeaf, the defaults (cross-fits, 72 epochs)": dict(
        aeon="OSULeaf", params={"max_epochs": 72, "cv": 3}
    ),
    # What a user gets: DejaVidClassifier(random_state=0) as each version ships it, so the
    # versions may fit different models (their accuracies are printed beside the times).
    "ACSF1, DejaVidClassifier() as shipped": dict(aeon="ACSF1", shipped=True),
}

_CHILD = r"""
import hashlib, json, sys, time
from collections.abc import Sequence
if sys.argv[1]:  # another tree: bypass the editable install's redirect to this checkout
    sys.meta_path[:] = [f for f in sys.meta_path
                        if type(f).__name__ != "ScikitBuildRedirectingFinder"]
    sys.path.insert(0, sys.argv[1])
import numpy as np
import sktdtw
from sktdtw import DejaVidClassifier
from sktdtw.datasets import make_temporal_order

config = json.loads(sys.argv[2])

class Lazy(Sequence):
    def __init__(self, items): self.items = items
    def __len__(self): return len(self.items)
    def __getitem__(self, i): return self.items[i]

if config.get("aeon"):
    sys.path.insert(1, sys.argv[3])  # benchmarks/, after the tree
    from bench_accuracy import load_set
    (train, y_train), (test, y_test) = load_set(config["aeon"])
else:
    X, y = make_temporal_order(n_samples=400, n_classes=4, n_features=config["n_features"],
                               min_length=40, max_length=120, random_state=0)
    (train, y_train), (test, y_test) = (X[:300], y[:300]), (X[300:], y[300:])
if config.get("lazy"):
    train, test = Lazy(train), Lazy(test)
if config.get("shipped"):
    clf = DejaVidClassifier(random_state=0)
else:
    clf = DejaVidClassifier(**{"max_epochs": 20, "cv": None, "random_state": 0,
                               **config["params"]})
start = time.perf_counter()
clf.fit(train, y_train)
fit = time.perf_counter() - start
start = time.perf_counter()
accuracy = float(np.mean(clf.predict(test) == np.asarray(y_test)))
predict = time.perf_counter() - start
digest = hashlib.sha256(clf.centroids_.tobytes()).hexdigest()[:16]
print(json.dumps({"fit_s": fit, "predict_s": predict, "accuracy": accuracy,
                  "centroids_sha256": digest,
                  "sktdtw": sktdtw.__file__}))
"""


def _run(tree, config):
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, tree or "", json.dumps(config), str(ROOT / "benchmarks")],
        capture_output=True, text=True, cwd="/tmp", check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=None, help="tree holding another sktdtw/")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
                        metavar="NAME", help="configurations to run (default: all)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/bench_fit.json"))
    args = parser.parse_args(argv)
    versions = {"this": None, **({"against": args.against} if args.against else {})}
    results = {}
    for name in args.configs:
        config = CONFIGS[name]
        runs = {version: [] for version in versions}
        for _ in range(args.repeats):
            for version, tree in versions.items():
                runs[version].append(_run(tree, config))
        results[name] = {
            version: {
                "fit_s": [r["fit_s"] for r in rs], "predict_s": [r["predict_s"] for r in rs],
                "best_fit_s": min(r["fit_s"] for r in rs),
                "best_predict_s": min(r["predict_s"] for r in rs),
                "accuracy": sorted({r["accuracy"] for r in rs}),
                "centroids_sha256": sorted({r["centroids_sha256"] for r in rs}),
                "sktdtw": rs[0]["sktdtw"],
            }
            for version, rs in runs.items()
        }
        print(name, json.dumps({v: (r["best_fit_s"], r["best_predict_s"], r["accuracy"],
                                    r["centroids_sha256"]) for v, r in results[name].items()}))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    import torch

    record = {
        "machine": machine(torch.device("cpu")),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "commit": commit, "against": args.against, "repeats": args.repeats,
        "results": results,
    }
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
