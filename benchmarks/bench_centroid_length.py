"""Test accuracy of DejaVid against the centroid length, on long series (issue 18, item 3).

For each data set of aeon's wheel given (or a stress variant, ``SET+stretched`` etc., as
bench_accuracy.py makes them; optionally stretched in time by repeating every step
``--stretch`` times) and each length (``--lengths``, or ``--fractions`` of the median
training length), two fits: the initial centroids alone
(``max_epochs=0``) and the defaults (with the epoch count chosen by the cross-fits); both
uncalibrated, since only accuracy is compared. ``"auto"`` is reported beside the lengths
with the length it chose.

Usage::

    python benchmarks/bench_centroid_length.py --datasets ArrowHead OSULeaf \
        --lengths 32 64 128 [--fractions 0.25 0.5 1] [--stretch 4]
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from bench_accuracy import environment, load_set

from sktdtw import DejaVidClassifier


def fit_and_score(X, y, X_test, y_test, length, epochs):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # chance-level fits warn; the scores say it
        clf = DejaVidClassifier(
            centroid_length=length, max_epochs=epochs, calibration=None,
            cv=None if epochs == 0 else 3, random_state=0,
        ).fit(X, y)
    return {
        "centroid_length": int(clf.centroids_.shape[1]), "n_epochs": int(clf.n_epochs_),
        "accuracy": float(clf.score(X_test, y_test)),
        "fit_seconds": time.perf_counter() - start,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--lengths", nargs="*", type=int, default=[])
    parser.add_argument("--fractions", nargs="*", type=float, default=[])
    parser.add_argument("--stretch", type=int, default=1)
    parser.add_argument(
        "--output", type=Path,
        default=Path(__file__).resolve().parent / "results" / "bench_centroid_length.json",
    )
    args = parser.parse_args()
    report = {"environment": environment(), "stretch": args.stretch, "datasets": {}}
    for name in args.datasets:
        (X, y), (X_test, y_test) = load_set(name)
        if args.stretch > 1:
            X, X_test = ([np.repeat(x, args.stretch, axis=0) for x in s] for s in (X, X_test))
        median = float(np.median([len(x) for x in X]))
        lengths = sorted({*args.lengths, *(max(1, round(f * median)) for f in args.fractions)})
        rows = []
        for length in [*lengths, "auto"]:
            for epochs in (0, 72):
                row = fit_and_score(X, y, X_test, y_test, length, epochs)
                row["requested"] = length
                rows.append(row)
                report["datasets"][name] = {"median_length": median, "n_train": len(X),
                                            "n_classes": len(np.unique(y)), "results": rows}
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(json.dumps(report, indent=2))  # a partial run counts
                print(f"{name:16s} x{args.stretch} L={length!s:5s} epochs<={epochs:2d}: "
                      f"acc={row['accuracy']:.3f} (kept {row['n_epochs']} epochs, "
                      f"L={row['centroid_length']}) {row['fit_seconds']:.1f}s", flush=True)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
