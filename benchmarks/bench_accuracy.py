"""Accuracy, log-loss and fit/predict time of DejaVid against baselines, on every
classification data set that ships inside the aeon wheel (no network), official splits,
unequal lengths as they are.

Methods, side by side in one run:

* DejaVid with its defaults (3 prototypes per class, the derivatives appended where the
  cross-fits choose them), without the derivatives (``derivatives=False``: the series'
  own features, as the paper), with one prototype per class, its untrained initialisation
  (the defaults with ``max_epochs=0``: DBA centroids, calibrated), and the paper's
  configuration;
* DejaVid tuned by a small ``GridSearchCV`` (3-fold, over ``n_prototypes`` and
  ``max_epochs``). The candidates are scored with ``cv=None`` (accuracy does
  not depend on the calibration cross-fits, which would triple the search's cost) and
  the best one is refitted with the defaults' calibration: ``refit=False`` and one more
  ``fit``, as the README recommends;
* 1-NN DTW (aeon), DBA nearest centroid (tslearn: one ``dtw_barycenter_averaging`` per
  class, squared-Euclidean DTW, the nearest barycenter under ``cdist_dtw``), mean pooling
  over time + standardised logistic regression, and MiniRocket (aeon; unequal-length
  sets are zero-padded at the end to the longest series, as aeon's ``Padder`` does).

Stress variants (``--variants``), built from the sets above to look like what users bring:
``+stretched`` (every series resampled to a random length of 1000 to 3000 steps),
``+two-per-class`` (two training series per class), ``+superclasses`` (classes merged in
pairs into super-classes of several shapes) and ``+many-classes`` (every series and its
time reversal, each a class of its own: twice the classes). Their test splits are built the
same way from the official test splits.

Reported per data set and method: accuracy, balanced accuracy, log-loss of
``predict_proba`` (clipped as scikit-learn does; the log-loss of predicting the training
class frequencies is given for reference), fit and predict seconds.

Usage::

    python benchmarks/bench_accuracy.py [--datasets NAME ...] [--methods NAME ...]
        [--variants NAME+VARIANT ...]
"""

import argparse
import json
import os
import platform
import subprocess
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import aeon.datasets
import numpy as np
import torch
from aeon.classification.convolution_based import MiniRocketClassifier
from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.datasets import load_from_ts_file
from bench_dtw import machine
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, log_loss
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from tslearn.barycenters import dtw_barycenter_averaging
from tslearn.metrics import cdist_dtw
from tslearn.utils import to_time_series_dataset

import sktdtw
from sktdtw import DejaVidClassifier
from sktdtw.dtw import available_backends

DATA_DIR = Path(aeon.datasets.__file__).parent / "data"
PAPER = dict(
    centroid_length=8, n_prototypes=1, learning_rate=1e-3, max_epochs=36, batch_size=48,
    weight_init="random", feature_scaling=None, logit_norm="zscore", calibration=None,
)
GRID = {"n_prototypes": [1, 3, 5], "max_epochs": [36, 72]}


def classification_datasets():
    """Names of the data sets in aeon's wheel with class labels and both splits."""
    names = []
    for train in sorted(DATA_DIR.glob("*/*_TRAIN.ts")):
        name = train.name[: -len("_TRAIN.ts")]
        test = train.with_name(f"{name}_TEST.ts")
        if name.endswith("_eq") or not test.exists():
            continue  # the _eq files are equal-length copies of another set
        with open(train, errors="replace") as f:
            header = f.read(4096).lower()
        if "@classlabel true" in header and name != "UnitTestTimeStamps":
            names.append(name)
    return names


def load(name):
    """Train and test splits as lists of (T, F) float arrays (aeon stores (F, T))."""
    splits = []
    for split in ("TRAIN", "TEST"):
        X, y = load_from_ts_file(str(DATA_DIR / name / f"{name}_{split}.ts"))
        splits.append(([np.asarray(x, dtype=np.float64).T for x in X], np.asarray(y)))
    return splits


def _stretched(series, rng):
    """Each series linearly resampled to a random length of 1000 to 3000 steps."""
    out = []
    for x in series:
        length = int(rng.integers(1000, 3001))
        old, new = np.linspace(0, 1, len(x)), np.linspace(0, 1, length)
        out.append(np.stack([np.interp(new, old, x[:, f]) for f in range(x.shape[1])], 1))
    return out


def _variant(splits, variant):
    """The stress variant ``variant`` of the (train, test) splits (see the module doc)."""
    rng = np.random.default_rng(0)
    (X_train, y_train), (X_test, y_test) = splits
    if variant == "stretched":
        return (_stretched(X_train, rng), y_train), (_stretched(X_test, rng), y_test)
    if variant == "two-per-class":
        keep = np.concatenate([rng.choice(np.flatnonzero(y_train == c), 2, replace=False)
                               for c in np.unique(y_train)])
        keep.sort()
        return ([X_train[i] for i in keep], y_train[keep]), (X_test, y_test)
    if variant == "superclasses":
        classes = np.unique(y_train)
        merged = {c: f"super{i // 2}" for i, c in enumerate(classes)}
        return ((X_train, np.array([merged[c] for c in y_train])),
                (X_test, np.array([merged[c] for c in y_test])))
    if variant == "many-classes":
        def doubled(X, y):
            return X + [x[::-1].copy() for x in X], np.concatenate(
                [np.char.add(y.astype(str), "+"), np.char.add(y.astype(str), "-")])
        return doubled(X_train, y_train), doubled(X_test, y_test)
    raise ValueError(f"unknown variant {variant!r}")


def load_set(name):
    """``load(name)``, or the stress variant of ``"SET+variant"``."""
    base, _, variant = name.partition("+")
    splits = load(base)
    return _variant(splits, variant) if variant else splits


def mean_pooling(series):
    return np.array([x.mean(0) for x in series])


def to_aeon(series):
    """aeon's collections: (n, F, T) when lengths are equal, else a list of (F, T)."""
    if len({len(x) for x in series}) == 1:
        return np.stack([x.T for x in series])
    return [x.T for x in series]


def zero_padded(series, length):
    """(n, F, length) with each series zero-padded at the end (aeon's Padder default)."""
    out = np.zeros((len(series), series[0].shape[1], length))
    for i, x in enumerate(series):
        out[i, :, : len(x)] = x.T[:, :length]
    return out


class MiniRocketPadded(BaseEstimator, ClassifierMixin):
    """MiniRocket on series zero-padded to the longest training series."""

    def fit(self, X, y):
        self.length_ = max(len(x) for x in X)
        self.model_ = MiniRocketClassifier(random_state=0).fit(zero_padded(X, self.length_), y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(zero_padded(X, self.length_))

    def predict_proba(self, X):
        return self.model_.predict_proba(zero_padded(X, self.length_))


class TslearnDBANearestCentroid(BaseEstimator, ClassifierMixin):
    """One tslearn DBA barycenter per class; the class of the nearest barycenter."""

    def fit(self, X, y):
        self.classes_, y_index = np.unique(y, return_inverse=True)
        data = to_time_series_dataset(X)
        self.barycenters_ = to_time_series_dataset([
            dtw_barycenter_averaging(data[y_index == k])
            for k in range(len(self.classes_))
        ])
        return self

    def decision_function(self, X):
        return -cdist_dtw(to_time_series_dataset(X), self.barycenters_)

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(1)]

    def predict_proba(self, X):
        scores = self.decision_function(X)
        return (scores == scores.max(1, keepdims=True)).astype(float)


class GridSearchThenCalibrate(BaseEstimator, ClassifierMixin):
    """GridSearchCV over uncalibrated candidates, then one calibrated refit."""

    def __init__(self, seed):
        self.seed = seed

    def fit(self, X, y):
        search = GridSearchCV(
            DejaVidClassifier(cv=None, random_state=self.seed), GRID, cv=3,
            refit=False,
        ).fit(X, y)
        self.best_params_ = search.best_params_
        self.model_ = DejaVidClassifier(random_state=self.seed, **self.best_params_).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def methods(seed):
    """Name -> (estimator factory, input adapter)."""
    as_list = list
    return {
        "DejaVid (defaults)": (lambda: DejaVidClassifier(random_state=seed), as_list),
        "DejaVid (derivatives=False)": (
            lambda: DejaVidClassifier(derivatives=False, random_state=seed), as_list
        ),
        "DejaVid (n_prototypes=1)": (
            lambda: DejaVidClassifier(n_prototypes=1, random_state=seed), as_list
        ),
        "DejaVid (untrained initialisation)": (
            lambda: DejaVidClassifier(max_epochs=0, random_state=seed), as_list
        ),
        "DejaVid (paper config)": (
            lambda: DejaVidClassifier(**PAPER, random_state=seed), as_list
        ),
        "DejaVid (grid search)": (lambda: GridSearchThenCalibrate(seed), as_list),
        "1-NN DTW (aeon)": (
            lambda: KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1), to_aeon
        ),
        "DBA nearest centroid (tslearn)": (lambda: TslearnDBANearestCentroid(), as_list),
        "mean pooling + LogReg": (
            lambda: make_pipeline(
                FunctionTransformer(mean_pooling), StandardScaler(),
                LogisticRegression(max_iter=2000),
            ),
            as_list,
        ),
        "MiniRocket (aeon)": (lambda: MiniRocketPadded(), as_list),
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
        "cpu": machine(torch.device("cpu"))["cpu"],
        "machine": platform.machine(),
        "processor": platform.processor(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
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


def run(dataset, seed, names):
    (X_train, y_train), (X_test, y_test) = load_set(dataset)
    lengths = [len(x) for x in X_train + X_test]
    classes, counts = np.unique(y_train, return_counts=True)
    prior = counts / counts.sum()
    info = {
        "n_train": len(X_train), "n_test": len(X_test), "n_classes": len(classes),
        "n_features": X_train[0].shape[1], "min_length": min(lengths),
        "max_length": max(lengths),
        "prior_log_loss": float(log_loss(y_test, np.tile(prior, (len(y_test), 1)),
                                         labels=classes)),
        "results": {},
    }
    for name, (make, adapt) in methods(seed).items():
        if names and name not in names:
            continue
        estimator = make()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            start = time.perf_counter()
            estimator.fit(adapt(X_train), y_train)
            fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        y_pred = estimator.predict(adapt(X_test))
        predict_seconds = time.perf_counter() - start
        proba = estimator.predict_proba(adapt(X_test))
        result = {
            "accuracy": float(np.mean(y_pred == y_test)),
            "balanced_accuracy": float(balanced_accuracy_score(y_test, y_pred)),
            "log_loss": float(log_loss(y_test, proba, labels=estimator.classes_)),
            "fit_seconds": fit_seconds,
            "predict_seconds": predict_seconds,
            "convergence_warnings": sum(
                issubclass(w.category, ConvergenceWarning) for w in caught
            ),
        }
        if hasattr(estimator, "best_params_"):
            result["best_params"] = estimator.best_params_
        if getattr(estimator, "cv_results_", None) is not None:  # what fit chose
            chosen = {key: values[estimator.best_index_]
                      for key, values in estimator.cv_results_.items()}
            result["chosen"] = {"prototypes": str(chosen["prototypes"]),
                                "n_epochs": int(chosen["n_epochs"]),
                                "out_of_fold_accuracy": float(chosen["accuracy"])}
        if hasattr(estimator, "centroids_"):
            result["centroids_shape"] = list(estimator.centroids_.shape)
        info["results"][name] = result
        print(f"{dataset:22s} {name:32s} acc={result['accuracy']:.3f} "
              f"ll={result['log_loss']:.3f} (prior {info['prior_log_loss']:.3f}) "
              f"fit={fit_seconds:7.1f}s predict={predict_seconds:6.2f}s", flush=True)
    return info


def summary(report):
    """Mean accuracy and log-loss of each method over the data sets."""
    names = {m for d in report["datasets"].values() for m in d["results"]}
    return {
        name: {
            key: float(np.mean([d["results"][name][key] for d in report["datasets"].values()
                                if name in d["results"]]))
            for key in ("accuracy", "balanced_accuracy", "log_loss")
        }
        for name in sorted(names)
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="default: every classification set in aeon's wheel")
    parser.add_argument("--methods", nargs="+", default=None, choices=list(methods(0)))
    parser.add_argument("--variants", nargs="*", default=[],
                        help="stress variants, as SET+stretched, SET+two-per-class, "
                             "SET+superclasses, SET+many-classes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", type=Path,
        default=Path(__file__).resolve().parent / "results" / "bench_accuracy.json",
    )
    args = parser.parse_args()
    datasets = args.datasets or classification_datasets()
    report = {"environment": environment(), "seed": args.seed, "grid": GRID,
              "paper_config": PAPER, "datasets": {}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for name in datasets + args.variants:
        report["datasets"][name] = run(name, args.seed, args.methods)
        report["mean"] = summary(report)
        # After every set: a run cut short keeps what it measured.
        args.output.write_text(json.dumps(report, indent=2))
    for name, means in report["mean"].items():
        print(f"MEAN {name:32s} acc={means['accuracy']:.3f} ll={means['log_loss']:.3f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
