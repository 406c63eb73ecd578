"""Fitted arrays stay bit-identical to arrays saved by an earlier version of the code.

``tests/data/reference_fits.npz`` holds the fitted arrays of the configurations in
``CASES``, saved with ``python tests/test_reference_fits.py`` before the training engine,
the data source and the op's memory layout were restructured (issue 11): a refactor
must not change what is learned. Bit-identity holds for one kernel ISA and one torch
release (float sums in another order differ in the last bits), so the test skips, saying
why, on another machine.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from sktdtw import DejaVidClassifier
from sktdtw.datasets import make_temporal_order

from conftest import LazySequence

REFERENCE = Path(__file__).parent / "data" / "reference_fits.npz"

CASES = {
    # The defaults (DBA k-means with several prototypes, pooled scaling, cross-fitted
    # temperature), few epochs.
    "default": dict(max_epochs=4),
    # The paper's configuration.
    "paper": dict(
        centroid_length=8, n_prototypes=1, learning_rate=1e-3, max_epochs=3, batch_size=8,
        weight_init="random", feature_scaling=None, logit_norm="zscore", calibration=None,
    ),
    # Held-out epoch selection, per-batch paths, per-feature scaling.
    "validation": dict(
        max_epochs=3, validation_fraction=0.25, path_update="batch",
        feature_scaling="standard", n_prototypes=2,
    ),
    # 70 features: rows the kernels pad to whole 64-byte vectors.
    "wide": dict(max_epochs=2, n_prototypes=1, init="mean", calibration_cv=None),
}


def _data(case):
    n_features = 70 if case == "wide" else 3
    X, y = make_temporal_order(
        n_samples=40, n_classes=2, n_features=n_features, min_length=12, max_length=30,
        random_state=7,
    )
    return X, y


def _fit(case, lazy=False):
    X, y = _data(case)
    clf = DejaVidClassifier(random_state=0, **CASES[case]).fit(
        LazySequence(X) if lazy else X, y
    )
    return {
        "centroids": clf.centroids_,
        "weights": clf.weights_,
        "centroid_class": clf.centroid_class_,
        "logit_scale": np.float64(clf.logit_scale_),
        "temperature": np.float64(np.nan if clf.temperature_ is None else clf.temperature_),
        "loss": np.asarray(clf.history_["loss"], dtype=np.float64),
    }


def _environment():
    from sktdtw import _core

    return f"{_core.cpu_isa()} torch {torch.__version__.split('+')[0]}"


@pytest.mark.parametrize("lazy", [False, True], ids=["list", "lazy"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fitted_arrays_match_the_saved_reference(case, lazy):
    with np.load(REFERENCE) as saved:  # closed on the skip too (else a ResourceWarning)
        if str(saved["environment"]) != _environment():
            pytest.skip(f"reference saved with {saved['environment']}, this is "
                        f"{_environment()}")
        for key, value in _fit(case, lazy).items():
            np.testing.assert_array_equal(value, saved[f"{case}/{key}"],
                                          err_msg=f"{case} {key}")


if __name__ == "__main__":
    arrays = {"environment": np.array(_environment())}
    for case in CASES:
        for key, value in _fit(case).items():
            arrays[f"{case}/{key}"] = value
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez(REFERENCE, **arrays)
    print(f"saved {REFERENCE} ({_environment()})")
