"""Tests of DejaVidClassifier and of the shared input conversion."""

import math
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from tslearn.preprocessing import TimeSeriesScalerMeanVariance
from tslearn.utils import to_time_series_dataset

import sktdtw._inference as inference_module
from sktdtw import DBAInitializer, DejaVidClassifier
from sktdtw._errors import InputWarning
from sktdtw._model.barycenters import resample as _resample
from sktdtw._source.validation import check_series_list
from sktdtw.datasets import make_temporal_order
from sktdtw.dtw import weighted_dtw

pytestmark = pytest.mark.numerics

# 2-D X is read as (n_samples, T) univariate series, so n_features_in_ is 1, not X.shape[1].
_TWO_D_IS_UNIVARIATE = (
    "2-D X is (n_samples, T) univariate series: n_features_in_ is 1 and X.T is valid input"
)
_EXPECTED_FAILED = {
    "DejaVidClassifier": {
        "check_n_features_in": _TWO_D_IS_UNIVARIATE,
        "check_n_features_in_after_fitting": _TWO_D_IS_UNIVARIATE,
        "check_classifiers_train": _TWO_D_IS_UNIVARIATE,
        "check_transformer_general": _TWO_D_IS_UNIVARIATE,
        "check_estimators_empty_data_messages": (
            "an (n, 0) array holds empty series; the error names the empty series, not features"
        ),
    },
    "DBAInitializer": {
        "check_n_features_in": _TWO_D_IS_UNIVARIATE,
        "check_n_features_in_after_fitting": _TWO_D_IS_UNIVARIATE,
        "check_estimators_empty_data_messages": (
            "an (n, 0) array holds empty series; the error names the empty series, not features"
        ),
    },
}


def _small(**params):
    """A fast classifier for the tests."""
    defaults = dict(
        centroid_length=4, max_epochs=3, dba_max_iter=3, random_state=0, cv=None,
        calibration=None, n_prototypes=1,
    )
    return DejaVidClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def ragged():
    X, y = make_temporal_order(
        n_samples=48, n_classes=3, n_features=2, n_events=3, min_length=8, max_length=16,
        random_state=0,
    )
    return X, y


# Random data and two epochs: training cannot help, and the estimator says so.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [
        DejaVidClassifier(centroid_length=2, max_epochs=2, dba_max_iter=2, random_state=0),
        DBAInitializer(centroid_length=2, max_iter=2, random_state=0),
    ],
    expected_failed_checks=lambda est: _EXPECTED_FAILED[type(est).__name__],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --- input forms -------------------------------------------------------------------------


def test_input_forms_are_equivalent(ragged):
    X, y = ragged
    padded = to_time_series_dataset(X)  # (n, T_max, F), trailing NaN rows
    assert np.isnan(padded).any()
    a = _small().fit(X, y)
    b = _small().fit(padded, y)
    # The same float32 series reach the same kernels in the same layout: bit for bit.
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.transform(X), b.transform(padded))

    univariate = [x[:, 0] for x in X[:20]]
    two_d = to_time_series_dataset(univariate)[:, :, 0]
    c = _small().fit(univariate, y[:20])
    d = _small().fit(two_d, y[:20])
    assert c.n_features_in_ == d.n_features_in_ == 1
    np.testing.assert_array_equal(c.centroids_, d.centroids_)


def test_check_series_list_conversions():
    series = check_series_list([[[1, 2], [3, 4]], np.ones((1, 2))])
    assert [s.shape for s in series] == [(2, 2), (1, 2)]
    assert all(s.dtype == np.float32 for s in series)
    X = np.arange(12, dtype=float).reshape(2, 3, 2)
    X[0, 2] = np.nan
    assert [s.shape for s in check_series_list(X)] == [(2, 2), (3, 2)]
    assert [s.shape for s in check_series_list(np.ones((3, 5)))] == [(5, 1)] * 3


@pytest.mark.parametrize(
    "X, match",
    [
        ([], "X is empty"),
        (np.ones(4), "Reshape your data"),
        (np.ones((2, 3, 4, 5)), "expected a list"),
        ([np.ones((3, 2)), np.ones((0, 2))], "sample 1 of X is empty"),
        ([np.ones((3, 2)), np.full((3, 2), np.nan)], "sample 1 of X is empty"),
        ([np.ones((3, 2)), np.ones((3, 3))], "sample 1 of X has 3 features but sample 0 has 2"),
        ([np.ones((3, 2)), np.array([[1.0, np.nan], [1.0, 1.0]])], "sample 1 .* time step 0"),
        ([np.ones((3, 2)), np.array([[1.0, 1.0], [np.inf, 1.0]])], "sample 1 .* non-finite"),
        ([np.ones((3, 2)), np.ones((3, 2, 2))], "sample 1 of X has shape"),
        ([np.ones((3, 2)), np.ones((3, 2)) * 1j], "Complex data not supported"),
    ],
)
def test_check_series_list_errors(X, match):
    with pytest.raises(ValueError, match=match):
        check_series_list(X)


@pytest.mark.parametrize(
    "X, n_features, match",
    [
        # A transposed series of a ragged list, against sample 0 and against a fit.
        ([np.ones((9, 2)), np.ones((2, 7))], None, "sample 1 .* transpose each to \\(T, F\\)"),
        ([np.ones((2, 7))], 2, "expecting 2 features .*the number it was fitted on.*frame size"),
        # Videos (frames, or file paths) given where series are expected.
        ([np.ones((6, 8, 8, 3))], None, "has shape .*encoded into .* with TSESlidingEncoder"),
        (np.ones((2, 6, 8, 8)), None, "has shape .*encoded into .* with TSESlidingEncoder"),
        (["a.mp4", "b.mp4"], None, "dtype <U5; .*with TSESlidingEncoder first"),
    ],
)
def test_misread_layouts_say_what_to_do(X, n_features, match):
    with pytest.raises(ValueError, match=match):
        check_series_list(X, n_features=n_features)


@pytest.mark.parametrize("loader", ["load_basic_motions", "load_gunpoint"])
def test_aeons_channels_first_arrays_are_not_misread_silently(loader):
    """Issue 19, item 4: aeon's (n, channels, T) arrays, a multivariate and a univariate
    set, warn at the user's line and say what to pass; the same data in tslearn's layout
    pass without a word."""
    import aeon.datasets

    X, _ = getattr(aeon.datasets, loader)(split="train")
    with pytest.warns(InputWarning, match=rf"X has shape \(40, {X.shape[1]}, {X.shape[2]}\), "
                      r"read as series of .*aeon's and sktime's \(n_samples, n_channels, "
                      r"n_timepoints\) layout, pass X\.transpose\(0, 2, 1\)") as record:
        check_series_list(X[:40])
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        check_series_list(X.transpose(0, 2, 1))


def test_embeddings_with_more_features_than_steps_are_not_mistaken_for_channels_first():
    """A TSE has fewer windows than features and is smooth along its windows only."""
    from sktdtw import TSESlidingEncoder
    from sktdtw.datasets import make_action_videos
    from sktdtw.encoders import RandomConv3dEncoder

    videos, _ = make_action_videos(n_videos=6, random_state=0)
    tses = TSESlidingEncoder(RandomConv3dEncoder()).fit_transform(videos)
    steps = min(len(t) for t in tses)
    X = np.stack([t[:steps] for t in tses])
    assert X.shape[1] < X.shape[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        check_series_list(X)


# --- documented errors -------------------------------------------------------------------


def test_errors(ragged):
    X, y = ragged
    message = "only one class .*DejaVidClassifier needs samples of at least 2"
    with pytest.raises(ValueError, match=message):
        _small().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="centroid_length"):
        _small(centroid_length=0).fit(X, y)
    with pytest.raises(ValueError, match="sample 3 of X contains non-finite"):
        _small().fit([*X[:3], np.full((5, 2), np.inf), *X[4:]], y)
    with pytest.raises(ValueError, match="sample 2 of X is empty"):
        _small().fit([*X[:2], np.ones((0, 2)), *X[3:]], y)
    with pytest.raises(ValueError, match="X has 47 series but y has 48"):
        _small().fit(X[:-1], y)
    with pytest.raises(ValueError, match="init has shape"):
        _small(init=np.zeros((3, 5, 2))).fit(X, y)
    with pytest.raises(ValueError, match="init contains non-finite"):
        _small(init=np.full((3, 4, 2), np.nan)).fit(X, y)
    with pytest.raises(ValueError, match="init has centroid_length=5"):
        _small(init=DBAInitializer(centroid_length=5)).fit(X, y)
    with pytest.raises(ValueError, match="not a valid torch device"):
        _small(device="not-a-device").fit(X, y)
    with pytest.raises(NotFittedError):
        _small().predict(X)

    clf = _small(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="has 3 features, but the estimator is expecting 2"):
        clf.predict([np.ones((4, 3))])
    with pytest.raises(ValueError, match="sample 1 of X contains non-finite"):
        clf.predict([X[0], np.array([[1.0, 1.0], [np.nan, 1.0], [1.0, 1.0]])])
    with pytest.raises(ValueError, match="warm_start=True but y has classes"):
        clf.set_params(warm_start=True).fit(X, np.where(y == 2, 5, y))
    with pytest.raises(ValueError, match="warm_start=True but centroid_length=5"):
        clf.set_params(warm_start=True, centroid_length=5).fit(X, y)


# --- fitted state and outputs ------------------------------------------------------------


def test_fitted_attributes_and_outputs(ragged):
    X, y = ragged
    labels = np.array(["walk", "run", "jump"])[y]
    clf = _small().fit(X, labels)
    assert list(clf.classes_) == ["jump", "run", "walk"]
    assert clf.n_features_in_ == 2
    assert clf.centroids_.shape == clf.weights_.shape == (3, 4, 2)
    assert isinstance(clf.centroids_, np.ndarray) and isinstance(clf.weights_, np.ndarray)
    assert (clf.weights_ > 0).all()
    assert clf.n_epochs_ == 3 and clf.cv_results_ is None and clf.best_index_ is None
    assert set(clf.history_) == {
        "loss", "train_accuracy", "learning_rate", "centroid_learning_rate", "seconds"
    }
    assert all(len(v) == 3 for v in clf.history_.values())
    cosine = [clf.learning_rate * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    np.testing.assert_allclose(clf.history_["learning_rate"], cosine)
    np.testing.assert_allclose(clf.history_["centroid_learning_rate"], np.array(cosine) / 3)

    dist = clf.transform(X)
    expected = weighted_dtw(
        X, torch.from_numpy(clf.centroids_), torch.from_numpy(clf.weights_)
    ).numpy()
    np.testing.assert_allclose(dist, expected, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[dist.argmin(1)])
    clf = _small(calibration="temperature", cv=2).fit(X, labels)
    dist = clf.transform(X)
    assert clf.distance_power_ in (1.0, 0.5, 0.25)
    logits = -dist ** clf.distance_power_ / clf.temperature_ + clf.intercept_
    np.testing.assert_allclose(clf.decision_function(X), logits, rtol=1e-6)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba, softmax(logits, axis=1), rtol=1e-6)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-6)
    assert clf.score(X, labels) == np.mean(clf.predict(X) == labels)
    assert list(clf.get_feature_names_out()) == [
        "dejavidclassifier0", "dejavidclassifier1", "dejavidclassifier2"
    ]


def test_binary_decision_function_is_log_odds(ragged):
    X, y = ragged
    keep = y < 2
    X2, y2 = [x for x, k in zip(X, keep) if k], y[keep]
    clf = _small().fit(X2, y2)
    decision = clf.decision_function(X2)
    assert decision.shape == (len(X2),)
    proba = clf.predict_proba(X2)
    np.testing.assert_allclose(decision, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(X2), (decision > 0).astype(int))


def test_inference_in_chunks_matches_one_batch(ragged, monkeypatch):
    X, y = ragged
    clf = _small().fit(X, y)
    whole = clf.transform(X)
    monkeypatch.setattr(inference_module, "INFERENCE_CHUNK", 5)
    # A pair's distance is summed in the same order whatever batch it is in: bit for bit.
    np.testing.assert_array_equal(clf.transform(X), whole)


def test_same_seed_same_arrays_bit_for_bit(ragged):
    X, y = ragged
    a = _small(validation_fraction=0.25).fit(X, y)
    b = _small(validation_fraction=0.25).fit(X, y)
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    assert a.history_["loss"] == b.history_["loss"]
    c = _small(random_state=1).fit(X, y)
    assert not np.array_equal(a.weights_, c.weights_)


def test_validation_fraction_keeps_best_epoch(ragged):
    X, y = ragged
    clf = _small(max_epochs=4, validation_fraction=0.25, learning_rate=0.05).fit(X, y)
    results = clf.cv_results_
    np.testing.assert_array_equal(results["n_epochs"], [0, 1, 2, 3, 4])
    assert len(clf.history_["loss"]) == 4  # trained through; the chosen epoch's values kept
    best = max(range(5), key=lambda i: (results["accuracy"][i], -results["log_loss"][i], -i))
    assert clf.best_index_ == best and clf.n_epochs_ == results["n_epochs"][best]
    with pytest.raises(ValueError, match="least populated class"):
        _small(validation_fraction=0.5).fit(X[:4], [0, 0, 0, 1])


# --- initialisation and ablation switches ------------------------------------------------


def test_init_options(ragged):
    X, y = ragged
    given = np.random.default_rng(0).normal(size=(3, 4, 2)).astype(np.float32)
    clf = _small(init=given, max_epochs=0).fit(X, y)
    np.testing.assert_array_equal(clf.centroids_, given)
    assert clf.n_epochs_ == 0 and clf.history_["loss"] == []

    mean = _small(init="mean", n_prototypes=1, max_epochs=0).fit(X, y)
    resampled = _resample(check_series_list(X), 4)
    expected = np.stack([resampled[y == k].mean(0) for k in range(3)]).astype(np.float32)
    np.testing.assert_array_equal(mean.centroids_, expected)

    # dba_samples covers every class, so the barycenters do not depend on the seeds.
    dba = DBAInitializer(centroid_length=4, max_iter=3, random_state=1).fit(X, y).centroids_
    medoid = DBAInitializer(centroid_length=4, max_iter=0, random_state=1).fit(X, y).centroids_
    unscaled = dict(max_epochs=0, feature_scaling=None)
    np.testing.assert_array_equal(_small(**unscaled).fit(X, y).centroids_, dba.astype("f4"))
    np.testing.assert_array_equal(
        _small(init="medoid", **unscaled).fit(X, y).centroids_, medoid.astype("f4")
    )
    # With feature scaling the DBA alignments weigh each feature by 1 / its std.
    std = np.concatenate(check_series_list(X)).astype(np.float64).std(0)
    scaled = DBAInitializer(centroid_length=4, max_iter=3, feature_weights=1 / std)
    # np.std and the fit's std may differ in the last bit, which moves a DBA alignment only
    # at a cost tie to 1e-16; the barycenters are means of the aligned frames: equal.
    np.testing.assert_array_equal(
        _small(max_epochs=0, feature_scaling="standard").fit(X, y).centroids_,
        scaled.set_params(random_state=1).fit(X, y).centroids_.astype("f4"),
    )
    from_initializer = _small(
        init=DBAInitializer(centroid_length=4, max_iter=0), max_epochs=0
    ).fit(X, y)
    np.testing.assert_array_equal(from_initializer.centroids_, medoid.astype("f4"))
    assert not np.array_equal(dba, medoid)


def test_learn_switches(ragged):
    X, y = ragged
    start = _small(max_epochs=0).fit(X, y)
    trained = _small().fit(X, y)
    assert not np.array_equal(trained.weights_, start.weights_)
    assert not np.array_equal(trained.centroids_, start.centroids_)

    frozen_w = _small(learn_weights=False).fit(X, y)
    np.testing.assert_array_equal(frozen_w.weights_, start.weights_)
    assert not np.array_equal(frozen_w.centroids_, start.centroids_)

    frozen_c = _small(learn_centroids=False).fit(X, y)
    np.testing.assert_array_equal(frozen_c.centroids_, start.centroids_)
    assert not np.array_equal(frozen_c.weights_, start.weights_)

    ones = _small(weight_init="ones", learn_weights=False, feature_scaling=None).fit(X, y)
    np.testing.assert_array_equal(ones.weights_, np.ones((3, 4, 2), dtype=np.float32))
    # With feature scaling, unit weights are those of the standardised features.
    scaled = _small(weight_init="ones", learn_weights=False, feature_scaling="standard")
    std = np.concatenate(check_series_list(X)).astype(np.float64).std(0)
    np.testing.assert_allclose(
        scaled.fit(X, y).weights_, np.broadcast_to(1 / std, (3, 4, 2)), rtol=1e-5
    )
    pooled = _small(weight_init="ones", learn_weights=False, feature_scaling="pooled")
    np.testing.assert_allclose(
        pooled.fit(X, y).weights_, 1 / np.sqrt(np.mean(std**2)), rtol=1e-5
    )

    nothing = _small(learn_weights=False, learn_centroids=False).fit(X, y)
    assert nothing.n_epochs_ == 0
    np.testing.assert_array_equal(nothing.centroids_, start.centroids_)


def test_diagonal_uses_diagonal_dtw(ragged):
    X, y = ragged
    clf = _small(diagonal=True).fit(X, y)
    C, W = torch.from_numpy(clf.centroids_), torch.from_numpy(clf.weights_)
    np.testing.assert_allclose(
        clf.transform(X), weighted_dtw(X, C, W, diagonal=True).numpy(), rtol=1e-6
    )
    assert not np.allclose(clf.transform(X), weighted_dtw(X, C, W).numpy())


def test_path_update(ragged):
    X, y = ragged
    # With one step per epoch the frozen and the live parameters coincide.
    one_step = dict(max_epochs=2, batch_size=len(X), feature_scaling=None)
    epoch = _small(path_update="epoch", **one_step).fit(X, y)
    batch = _small(path_update="batch", **one_step).fit(X, y)
    np.testing.assert_array_equal(epoch.centroids_, batch.centroids_)
    np.testing.assert_array_equal(epoch.weights_, batch.weights_)
    many_steps = dict(batch_size=8, learning_rate=0.1)
    epoch = _small(path_update="epoch", **many_steps).fit(X, y)
    batch = _small(path_update="batch", **many_steps).fit(X, y)
    assert not np.array_equal(epoch.weights_, batch.weights_)


def test_logit_norm_none(ragged):
    X, y = ragged
    clf = _small(logit_norm="none", calibration=None).fit(X, y)
    dist = clf.transform(X)
    np.testing.assert_allclose(clf.decision_function(X), -dist)
    np.testing.assert_allclose(clf.predict_proba(X), softmax(-dist, axis=1), rtol=1e-6)
    assert not np.array_equal(clf.weights_, _small().fit(X, y).weights_)


def test_centroid_learning_rate(ragged):
    X, y = ragged
    default = _small(learning_rate=0.03, learn_weights=False).fit(X, y)
    explicit = _small(learning_rate=0.5, centroid_learning_rate=0.01, learn_weights=False)
    # 0.03 / 3 == 0.01 exactly in float64: the same fit, bit for bit.
    np.testing.assert_array_equal(default.centroids_, explicit.fit(X, y).centroids_)


def test_warm_start_continues_from_fitted_state(ragged):
    X, y = ragged
    clf = _small().fit(X, y)
    fitted = clf.centroids_.copy(), clf.weights_.copy()
    clf.set_params(warm_start=True, learn_centroids=False, init="mean", n_prototypes=1)
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.centroids_, fitted[0])
    assert not np.array_equal(clf.weights_, fitted[1])
    cold = clone(clf).set_params(warm_start=False).fit(X, y)
    assert not np.array_equal(cold.centroids_, fitted[0])


def test_verbose_progress_bar(ragged, capsys):
    X, y = ragged
    _small(max_epochs=2).fit(X, y)
    assert capsys.readouterr().err == ""
    _small(max_epochs=2, verbose=1, validation_fraction=0.25).fit(X, y)
    err = capsys.readouterr().err
    assert "DejaVidClassifier" in err and "loss=" in err and "acc=" in err
    # The cross-fits that choose the epoch count show their own bars (they ran silently).
    _small(max_epochs=2, verbose=1, cv=3, calibration="temperature").fit(X, y)
    bars = capsys.readouterr().err
    assert all(f"DejaVidClassifier cross-fit {k}/3" in bars for k in (1, 2, 3)), bars


# --- scikit-learn integration ------------------------------------------------------------


def test_pipeline_with_preprocessing(ragged):
    X, y = ragged
    padded = to_time_series_dataset(X)
    pipe = make_pipeline(TimeSeriesScalerMeanVariance(), _small()).fit(padded, y)
    scaled = TimeSeriesScalerMeanVariance().fit_transform(padded)
    alone = _small().fit(scaled, y)
    np.testing.assert_array_equal(pipe.predict(padded), alone.predict(scaled))
    np.testing.assert_array_equal(pipe[-1].centroids_, alone.centroids_)


def _fold_scores(estimator, X, y, cv):
    """Accuracy on each test fold of ``cv`` (a StratifiedKFold, as scikit-learn's searches
    use for a classifier), computed here: fit on the other folds, then accuracy_score."""
    scores = []
    for train, test in cv.split(X, y):
        fitted = clone(estimator).fit([X[i] for i in train], y[train])
        scores.append(accuracy_score(y[test], fitted.predict([X[i] for i in test])))
    return np.array(scores)


def test_grid_search_on_ragged_list(ragged):
    X, y = ragged
    assert isinstance(X, list) and len({len(x) for x in X}) > 1
    grid_params = {"centroid_length": [2, 4], "learning_rate": [1e-3, 1e-2]}
    grid = GridSearchCV(_small(max_epochs=2), grid_params, cv=2, error_score="raise").fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_params_ == grid.cv_results_["params"][
        int(np.argmax(grid.cv_results_["mean_test_score"]))]
    # The best score is its folds' accuracy, recomputed here on the ragged list's folds
    # (the same fits in the same process: equal bit for bit).
    folds = _fold_scores(_small(max_epochs=2, **grid.best_params_), X, y, StratifiedKFold(2))
    assert grid.best_score_ == folds.mean()
    assert grid.best_score_ >= 0.8  # chance: 1/3 (the temporal orders are learnable)
    assert grid.best_estimator_.centroids_.shape[1] == grid.best_params_["centroid_length"]
    np.testing.assert_array_equal(grid.predict(X), grid.best_estimator_.predict(X))


@pytest.mark.slow
def test_grid_search_in_worker_processes(ragged):
    # The estimator and the ragged list travel to joblib's worker processes, whose fits are
    # those of this process: the compiled kernels do not depend on the thread count, and
    # torch runs ops on tensors this small on one thread (below its parallel grain).
    X, y = ragged
    search = dict(param_grid={"centroid_length": [2, 4]}, cv=2, error_score="raise")
    parallel = GridSearchCV(_small(), n_jobs=2, **search).fit(X, y)
    sequential = GridSearchCV(_small(), n_jobs=1, **search).fit(X, y)
    np.testing.assert_array_equal(parallel.cv_results_["mean_test_score"],
                                  sequential.cv_results_["mean_test_score"])


def test_cross_val_score_on_ragged_list(ragged):
    X, y = ragged
    scores = cross_val_score(_small(max_epochs=2), X, y, cv=3, error_score="raise")
    # The accuracy of each fold, computed here (same fits, same process: bit for bit).
    np.testing.assert_array_equal(scores, _fold_scores(_small(max_epochs=2), X, y,
                                                       StratifiedKFold(3)))
    assert scores.min() >= 0.8  # chance: 1/3; the three temporal orders are learnable


def test_joblib_and_pickle_round_trip(ragged, tmp_path):
    X, y = ragged
    clf = _small().fit(X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).transform(X), clf.transform(X))
    assert b"torch" not in pickle.dumps(clf.__dict__)


def test_clone_is_unfitted_with_same_params(ragged):
    X, y = ragged
    init = DBAInitializer(centroid_length=4, max_iter=1)
    clf = _small(init=init).fit(X, y)
    copy = clone(clf)
    assert not hasattr(copy, "centroids_")
    assert copy.get_params()["init"] is not init
    assert copy.get_params()["init"].get_params() == init.get_params()
    assert not hasattr(init, "centroids_")  # fit left init unfitted
    np.testing.assert_array_equal(copy.fit(X, y).centroids_, clf.centroids_)


# --- accuracy ----------------------------------------------------------------------------


def test_learns_temporal_order_that_mean_pooling_cannot():
    X, y = make_temporal_order(
        n_samples=240, n_classes=3, n_features=3, n_events=4, noise=0.3, random_state=0
    )
    X_train, y_train, X_test, y_test = X[:120], y[:120], X[120:], y[120:]
    clf = DejaVidClassifier(
        max_epochs=10, learning_rate=1e-2, weight_init="ones", random_state=0
    ).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95

    def pool(series):
        return np.array([x.mean(0) for x in series])

    pooled = LogisticRegression().fit(pool(X_train), y_train)
    assert pooled.score(pool(X_test), y_test) <= 1 / 3 + 0.15


def test_feature_padding_is_exact():
    # Many features are zero-padded internally to aligned rows; the fitted arrays and the
    # distances must be those of the unpadded problem.
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(t), 70)).astype(np.float32) for t in rng.integers(3, 12, 30)]
    y = np.arange(30) % 3
    clf = DejaVidClassifier(
        centroid_length=4, max_epochs=2, n_prototypes=1, cv=None, calibration=None,
        random_state=0,
    ).fit(X, y)
    assert clf.centroids_.shape == clf.weights_.shape == (3, 4, 70)
    expected = weighted_dtw(
        X, torch.from_numpy(clf.centroids_), torch.from_numpy(clf.weights_)
    ).numpy()
    np.testing.assert_allclose(clf.transform(X), expected, rtol=1e-5)


def test_divergence_is_a_clear_error_not_silent_nan(ragged):
    X, y = ragged
    clf = DejaVidClassifier(centroid_length=3, max_epochs=3, learning_rate=1e30,
                            weight_init="ones", random_state=0)
    with pytest.raises(ValueError, match="training diverged in epoch 0: .*; lower "
                                         "learning_rate"):
        clf.fit(X, y)


def test_overflowing_data_is_named_not_blamed_on_the_learning_rate(ragged):
    """Finite data whose costs overflow float32: an error naming the sample and the cause,
    in fit (not "lower learning_rate") and at prediction (not NaN probabilities)."""
    X, y = ragged
    clf = DejaVidClassifier(
        centroid_length=3, max_epochs=1, init="mean", n_prototypes=1, random_state=0
    )
    huge = [np.clip(x, -3, 3) * np.float32(1e38) for x in X]
    with pytest.raises(ValueError, match="overflows float32.*too large for float32.*scale") as e:
        clf.fit(huge, y)
    assert "learning" not in str(e.value)
    clf.fit(X, y)
    X_test = list(X[:5]) + [np.full_like(X[0], 3e38)]
    with pytest.raises(ValueError, match="distance of sample 5 to centroid 0 overflows float32"):
        clf.predict_proba(X_test)
    with pytest.raises(ValueError, match="sample 5 .* overflows"):
        clf.predict(X_test)


def test_a_store_of_other_features_says_what_the_fit_expects(tmp_path):
    from sktdtw._source import as_source
    from sktdtw.io import open_store, write_store

    write_store(tmp_path / "s", [np.ones((4, 3), np.float32)] * 2)
    with pytest.raises(ValueError, match="X has 3 features, .*expecting 2 .*fitted on"):
        as_source(open_store(tmp_path / "s"), n_features=2)


def test_a_warm_start_does_not_use_init(ragged):
    # The fitted prototypes are the start: an init changed since (even to one whose
    # parameters its own fit would refuse) is not looked at.
    X, y = ragged
    clf = _small(warm_start=True).fit(X, y)
    clf.set_params(init=DBAInitializer(centroid_length=99, max_iter=-1)).fit(X, y)
    assert clf.centroids_.shape[1] != 99
