"""Test accuracy and fit/predict time of DejaVid against baselines on public data sets.

The data sets ship inside aeon (no network): BasicMotions (multivariate), JapaneseVowels
(multivariate, unequal lengths), PickupGestureWiimoteZ (univariate, unequal lengths) and
ItalyPowerDemand (univariate), each with its official train/test split.

Methods: DejaVidClassifier with its defaults, and with unit initial weights; DejaVid tuned
by a small GridSearchCV (centroid_length x learning_rate x weight_init, 3-fold); 1-NN DTW (tslearn); DBA nearest centroid
(DejaVid's initial centroids, unit weights, no training); mean pooling over time followed by
a standardised logistic regression.

Usage::

    python benchmarks/bench_accuracy.py [--quick] [--datasets NAME ...] [--output PATH]
"""

import argparse
import json
import os
import platform
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from aeon.datasets import (
    load_basic_motions,
    load_italy_power_demand,
    load_japanese_vowels,
    load_pickup_gesture_wiimoteZ,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from tslearn.neighbors import KNeighborsTimeSeriesClassifier
from tslearn.utils import to_time_series_dataset

import sktdtw
from sktdtw import DejaVidClassifier
from sktdtw.dtw import available_backends

DATASETS = {
    "BasicMotions": load_basic_motions,
    "JapaneseVowels": load_japanese_vowels,
    "PickupGestureWiimoteZ": load_pickup_gesture_wiimoteZ,
    "ItalyPowerDemand": load_italy_power_demand,
}


def load(name):
    """Train and test splits as lists of (T, F) float arrays (aeon stores (F, T))."""
    splits = []
    for split in ("train", "test"):
        X, y = DATASETS[name](split=split)
        splits.append(([np.asarray(x, dtype=np.float64).T for x in X], np.asarray(y)))
    return splits


def mean_pooling(series):
    return np.array([x.mean(0) for x in series])


def methods(quick, seed):
    """Name -> (estimator factory, input adapter)."""
    as_list = list
    grid = {
        "centroid_length": [8, 16] if quick else [4, 8, 16],
        "learning_rate": [1e-3, 1e-2],
        "weight_init": ["random", "ones"],
    }
    return {
        "DejaVid (defaults)": (lambda: DejaVidClassifier(random_state=seed), as_list),
        "DejaVid (weight_init='ones')": (
            lambda: DejaVidClassifier(weight_init="ones", random_state=seed), as_list
        ),
        "DejaVid (grid search)": (
            lambda: GridSearchCV(DejaVidClassifier(random_state=seed), grid, cv=3),
            as_list,
        ),
        "1-NN DTW": (
            lambda: KNeighborsTimeSeriesClassifier(n_neighbors=1, metric="dtw"),
            to_time_series_dataset,
        ),
        "DBA nearest centroid": (
            lambda: DejaVidClassifier(max_epochs=0, weight_init="ones", random_state=seed),
            as_list,
        ),
        "mean pooling + LogReg": (
            lambda: make_pipeline(
                FunctionTransformer(mean_pooling), StandardScaler(),
                LogisticRegression(max_iter=2000),
            ),
            as_list,
        ),
    }


def git_commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout, or no commit yet


def environment():
    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "dtw_backends": available_backends(),
        "python": platform.python_version(),
        "versions": {
            "sktdtw": sktdtw.__version__,
            **{
                pkg: version(pkg)
                for pkg in ("torch", "scikit-learn", "numpy", "tslearn", "aeon")
            },
        },
        "commit": git_commit(),
    }


def run(dataset, quick, seed):
    (X_train, y_train), (X_test, y_test) = load(dataset)
    lengths = [len(x) for x in X_train + X_test]
    info = {
        "n_train": len(X_train), "n_test": len(X_test), "n_classes": len(set(y_train)),
        "n_features": X_train[0].shape[1], "min_length": min(lengths),
        "max_length": max(lengths), "results": {},
    }
    for name, (make, adapt) in methods(quick, seed).items():
        estimator = make()
        start = time.perf_counter()
        estimator.fit(adapt(X_train), y_train)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = float(np.mean(estimator.predict(adapt(X_test)) == y_test))
        predict_seconds = time.perf_counter() - start
        result = {
            "accuracy": accuracy, "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
        }
        if isinstance(estimator, GridSearchCV):
            result["best_params"] = estimator.best_params_
        info["results"][name] = result
        print(f"{dataset:22s} {name:28s} acc={accuracy:.3f} fit={fit_seconds:7.1f}s "
              f"predict={predict_seconds:6.2f}s", flush=True)
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid search")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", type=Path,
        default=Path(__file__).resolve().parent / "results" / "bench_accuracy.json",
    )
    args = parser.parse_args()
    report = {
        "environment": environment(), "quick": args.quick, "seed": args.seed,
        "datasets": {name: run(name, args.quick, args.seed) for name in args.datasets},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
