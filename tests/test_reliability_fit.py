"""Reliability of fits (issue 21): refits that fail, checkpoints of other data, and
parameters far beyond the data. Each test reproduces a silent wrong result it guards against.
"""

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import sktdtw._classifier as classifier_module
from sktdtw import DejaVidClassifier
from sktdtw._errors import InputError
from sktdtw.datasets import make_temporal_order


@pytest.fixture(scope="module")
def data():
    return make_temporal_order(
        n_samples=36, n_classes=2, n_features=2, n_events=3, min_length=8, max_length=14,
        random_state=0,
    )


def _clf(**params):
    defaults = dict(centroid_length=4, max_epochs=2, batch_size=8, dba_max_iter=2,
                    n_prototypes=1, calibration=None, random_state=0)
    return DejaVidClassifier(**{**defaults, **params})


def _foreign_checkpoint(data, tmp_path):
    """A checkpoint written by another fit (another learning rate) than the tests run."""
    X, y = data
    path = tmp_path / "foreign.pt"
    _clf(checkpoint=path, learning_rate=0.5).fit(X, y)
    return path


def _fail_in_calibration(monkeypatch):
    """Make the last step of a fit (after training) raise, as a late failure would."""
    def fail(*args, **kwargs):
        raise InputError("calibration failed")

    monkeypatch.setattr(classifier_module, "calibrated_temperature", fail)


@pytest.mark.parametrize("where", ["checkpoint", "calibration"])
def test_failed_refit_leaves_the_fitted_model_as_it_was(data, tmp_path, monkeypatch, where):
    """Issue 21, item 1: a refit on labels a, b, c refused midway kept the new classes_
    with the old centroids, so predict answered 'a'/'b' for data labelled 0/1."""
    X, y = data
    clf = _clf(calibration="temperature", calibration_cv=None).fit(X, y)
    if where == "checkpoint":
        clf.set_params(checkpoint=_foreign_checkpoint(data, tmp_path))
    else:
        _fail_in_calibration(monkeypatch)
    before = joblib.hash(vars(clf))
    with pytest.raises(InputError, match="different fit|calibration failed"):
        clf.fit(X, np.array(["a", "b", "c"])[np.arange(len(y)) % 3])
    assert joblib.hash(vars(clf)) == before
    assert set(clf.predict(X)) <= {0, 1}


@pytest.mark.parametrize("where", ["checkpoint", "calibration"])
def test_failed_first_fit_leaves_the_estimator_unfitted(data, tmp_path, monkeypatch, where):
    """Issue 21, item 1: a first fit that failed midway left classes_ and n_features_in_,
    so check_is_fitted passed and predict raised AttributeError (no centroids_)."""
    X, y = data
    clf = _clf(calibration="temperature", calibration_cv=None)
    if where == "checkpoint":
        clf.set_params(checkpoint=_foreign_checkpoint(data, tmp_path))
    else:
        _fail_in_calibration(monkeypatch)
    params = dict(vars(clf))
    with pytest.raises(InputError, match="different fit|calibration failed"):
        clf.fit(X, y)
    assert vars(clf) == params
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)


def test_failed_warm_start_keeps_the_previous_fit(data, monkeypatch):
    """A warm start that fails leaves the model it would have continued."""
    X, y = data
    clf = _clf(warm_start=True, calibration="temperature").fit(X, y)
    before = joblib.hash(vars(clf))
    _fail_in_calibration(monkeypatch)
    with pytest.raises(InputError, match="calibration failed"):
        clf.fit(X, y)
    assert joblib.hash(vars(clf)) == before
    check_is_fitted(clf)

