"""Reliability of fits (issue 21): refits that fail, checkpoints of other data, and
parameters far beyond the data. Each test reproduces a silent wrong result it guards against.
"""

import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning, NotFittedError
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_is_fitted

import sktdtw._classifier as classifier_module
from sktdtw import DejaVidClassifier
from sktdtw._cli import main
from sktdtw._errors import InputError
from sktdtw.datasets import make_temporal_order
from sktdtw.io import write_store

from conftest import assert_same_fit


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
    # No held-out selection: every epoch is trained, so the file is written whatever
    # count a selection would keep; only the file matters, not how well the fit learned.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _clf(checkpoint=path, learning_rate=0.5, cv=None).fit(X, y)
    assert path.exists()
    return path


def _fail_in_calibration(monkeypatch):
    """Make the last step of a fit (the check after training, beside the temperature)
    raise, as a late failure would."""
    def fail(*args, **kwargs):
        raise InputError("calibration failed")

    monkeypatch.setattr(classifier_module, "warn_if_not_learned", fail)


@pytest.mark.parametrize("where", ["checkpoint", "calibration"])
def test_failed_refit_leaves_the_fitted_model_as_it_was(data, tmp_path, monkeypatch, where):
    """Issue 21, item 1: a refit on labels a, b, c refused midway kept the new classes_
    with the old centroids, so predict answered 'a'/'b' for data labelled 0/1."""
    X, y = data
    clf = _clf(calibration="temperature", cv=2).fit(X, y)
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
    clf = _clf(calibration="temperature", cv=2)
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


# ------------------------------------------------------------ checkpoints of other data


def _other_values(X):
    """Series of the same lengths and features as ``X``, with other values."""
    return [x[::-1].copy() for x in X]


@pytest.mark.parametrize("change", ["values", "labels"])
def test_checkpoint_of_other_data_of_the_same_shape_is_refused(data, tmp_path, change):
    """Issue 21, item 2: the fingerprint held the data's size and classes only, so a fit on
    other values (or labels) of the same shape returned the checkpoint's finished model."""
    X, y = data
    path = tmp_path / "run.pt"
    _clf(checkpoint=path).fit(X, y)
    X2, y2 = (_other_values(X), y) if change == "values" else (X, y[::-1].copy())
    key = "data" if change == "values" else "labels"
    with pytest.raises(InputError, match=f"different fit .*{key}: checkpoint"):
        _clf(checkpoint=path).fit(X2, y2)


def test_rebuilt_store_is_not_resumed_from_a_stale_checkpoint(data, tmp_path, capsys):
    """Issue 21, item 2, as reported: ``sktdtw fit --checkpoint`` on a store rebuilt with
    other values answered ``already holds a finished fit``."""
    X, y = data
    store = tmp_path / "store"
    argv = ["fit", "--store", str(store), "--out", str(tmp_path / "m.joblib"),
            "--checkpoint", str(tmp_path / "stale.pt"), "--centroid-length", "4",
            "--max-epochs", "2", "--n-prototypes", "1", "--calibration", "none",
            "--dba-max-iter", "2", "--random-state", "0"]
    write_store(store, X, labels=y)
    assert main(argv) == 0
    write_store(store, _other_values(X), labels=y, overwrite=True)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "was written by a different fit (data: " in err and "Traceback" not in err


def test_same_series_in_a_store_or_a_list_share_a_checkpoint(data, tmp_path):
    """The digest is of the series, not of their container: a fit on a store resumes (here:
    finds finished) from the checkpoint of the same series in a list."""
    X, y = data
    path = tmp_path / "run.pt"
    reference = _clf(checkpoint=path).fit(X, y)
    store = write_store(tmp_path / "store", X, labels=y)
    assert_same_fit(_clf(checkpoint=path).fit(store, y), reference)


def test_checkpoint_in_cross_validation_is_never_another_folds_model(data, tmp_path):
    """Issue 21, item 3: folds of equal size shared a fingerprint, so folds 2 and 3
    silently returned fold 1's model. Now they fail (unfitted), fold 1 stands."""
    X, y = data
    clf = _clf(checkpoint=tmp_path / "cv.pt")
    with pytest.warns(FitFailedWarning, match="different fit"):
        result = cross_validate(clf, X, y, cv=3, return_estimator=True)
    first, *others = result["estimator"]
    assert_same_fit(first, _clf().fit(_safe_indexing(X, _train_folds(y)[0]),
                                      y[_train_folds(y)[0]]))
    assert np.isnan(result["test_score"][1:]).all()
    for estimator in others:
        with pytest.raises(NotFittedError):
            check_is_fitted(estimator)


def _train_folds(y):
    return [train for train, _ in StratifiedKFold(3).split(np.zeros(len(y)), y)]


# ------------------------------------------------------------ parameters beyond the data


def test_centroid_length_far_beyond_the_series_warns_once(data):
    """Issue 21, item 16: centroid_length=5000 on 5-step series ran 231 s without a word.
    The length is honoured (the model is the one asked for), with one warning, not one
    more per calibration cross-fit."""
    X, y = data
    short = [x[:5] for x in X]
    with pytest.warns(UserWarning, match=r"centroid_length=40 is 8 times the longest "
                                         r"training series \(5 steps\)") as record:
        clf = _clf(centroid_length=40, max_epochs=1, calibration="temperature",
                   cv=2).fit(short, y)
    assert len(record) == 1 and record[0].filename == __file__
    assert clf.centroids_.shape[1] == 40


@pytest.mark.parametrize("length, steps", [(10, 5), ("auto", 3)])
def test_centroid_length_up_to_twice_the_series_is_quiet(data, length, steps):
    """Up to twice the longest series, and "auto" (at least 8, even for 3-step series)."""
    X, y = data
    _clf(centroid_length=length, max_epochs=0).fit([x[:steps] for x in X], y)
