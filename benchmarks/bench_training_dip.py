"""Per-epoch training loss and accuracy where training first lowers training accuracy
(issue 18, item 2): sharp transients (:func:`sktdtw.datasets.make_transients`, 100
series to train and 100 to test).

Per seed and schedule length, one fit of the defaults with ``cv=None`` (every epoch
kept: nothing hides a dip) records ``history_["loss"]`` and ``history_["train_accuracy"]``
(the batches' predictions during each epoch) and the exact training and test accuracy at
the end; then the same model with every prototype's overall weight scale taken out
(``weights_`` divided by the geometric mean of its own weights, times that of all
prototypes), which tells whether the scales that training moved cause the errors; and
one fit of the defaults (``cv=3``), whose cross-fits choose the epoch count.

Usage::

    python benchmarks/bench_training_dip.py [--seeds 0 1 2] [--max-epochs 8 72]
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from bench_accuracy import environment
from sklearn.base import clone

from sktdtw import DejaVidClassifier
from sktdtw.datasets import make_transients


def without_scales(clf):
    """A copy of the fitted ``clf`` whose prototypes share one overall weight scale."""
    flat = clone(clf)
    flat.__dict__.update({k: v for k, v in clf.__dict__.items() if k.endswith("_")})
    mean_log = np.log(clf.weights_.astype(np.float64)).mean(axis=(1, 2), keepdims=True)
    flat.weights_ = (clf.weights_ * np.exp(mean_log.mean() - mean_log)).astype(np.float32)
    return flat


def run(seed, max_epochs):
    X, y = make_transients(200, random_state=seed)
    (X, X_test), (y, y_test) = (X[:100], X[100:]), (y[:100], y[100:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ConvergenceWarning of a dip: recorded below
        start = time.perf_counter()
        every_epoch = DejaVidClassifier(
            max_epochs=max_epochs, cv=None, calibration=None, random_state=0
        ).fit(X, y)
        seconds = time.perf_counter() - start
        untrained = clone(every_epoch).set_params(max_epochs=0).fit(X, y)
        selected = DejaVidClassifier(max_epochs=max_epochs, random_state=0).fit(X, y)
    flat = without_scales(every_epoch)
    return {
        "seed": seed, "max_epochs": max_epochs,
        "initial": {"train_accuracy": untrained.score(X, y),
                    "test_accuracy": untrained.score(X_test, y_test)},
        "every_epoch_kept": {
            "loss": every_epoch.history_["loss"],
            "train_accuracy": every_epoch.history_["train_accuracy"],
            "final_train_accuracy": every_epoch.score(X, y),
            "final_test_accuracy": every_epoch.score(X_test, y_test),
            "fit_seconds": seconds,
        },
        "scales_taken_out": {"train_accuracy": flat.score(X, y),
                             "test_accuracy": flat.score(X_test, y_test)},
        "selected": {"n_epochs": int(selected.n_epochs_),
                     "train_accuracy": selected.score(X, y),
                     "test_accuracy": selected.score(X_test, y_test)},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--max-epochs", nargs="+", type=int, default=[8, 72])
    parser.add_argument(
        "--output", type=Path,
        default=Path(__file__).resolve().parent / "results" / "bench_training_dip.json",
    )
    args = parser.parse_args()
    report = {"environment": environment(), "runs": []}
    for seed in args.seeds:
        for max_epochs in args.max_epochs:
            result = run(seed, max_epochs)
            report["runs"].append(result)
            kept, flat = result["every_epoch_kept"], result["scales_taken_out"]
            history = kept["train_accuracy"]
            print(f"seed {seed} max_epochs {max_epochs:3d}: initial train "
                  f"{result['initial']['train_accuracy']:.2f}; every epoch kept: lowest "
                  f"{min(history):.2f} (epoch {int(np.argmin(history)) + 1}), final train "
                  f"{kept['final_train_accuracy']:.2f} test {kept['final_test_accuracy']:.2f};"
                  f" scales taken out: train {flat['train_accuracy']:.2f} test "
                  f"{flat['test_accuracy']:.2f}; selected {result['selected']['n_epochs']} "
                  f"epochs: train {result['selected']['train_accuracy']:.2f} test "
                  f"{result['selected']['test_accuracy']:.2f}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
