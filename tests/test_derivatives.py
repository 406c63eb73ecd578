"""The derivatives appended as features (``derivatives``): the gradient against NumPy's,
the sources that append them, and the choice ``fit`` makes on its cross-fits."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sktdtw import DejaVidClassifier
from sktdtw._errors import InputError, InputWarning
from sktdtw._model import clearly_better, derivative_scale
from sktdtw._source import DerivativeSource, as_source, packed_gradient, split_batch

from conftest import LazySequence, assert_same_fit


def numpy_derivatives(series, scale):
    """Each float32 series with ``numpy.gradient`` along time times ``scale`` appended,
    both in float64 and rounded to float32 (0 for a one-step series, which numpy.gradient
    refuses)."""
    out = []
    for x in series:
        x = np.asarray(x, dtype=np.float32)
        wide = x.astype(np.float64)
        slope = np.gradient(wide, axis=0) if len(x) > 1 else np.zeros_like(wide)
        scaled = slope * np.asarray(scale, dtype=np.float32).astype(np.float64)
        out.append(np.hstack([x, scaled.astype(np.float32)]))
    return out


def ragged(n, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(t), n_features)).astype(np.float32)
            for t in rng.integers(1, 9, n)]


def level_or_shape(n, informative, seed=0):
    """Two classes, ``n`` series of 30 to 40 steps. ``"shape"``: a fast rise and slow fall
    or the reverse, each series at a random level far larger than the bump, so that only
    the slopes tell the classes apart. ``"level"``: noise around level 0 or 1, so that the
    slopes are noise."""
    rng = np.random.default_rng(seed)
    X, y = [], np.arange(n) % 2
    for label in y:
        t = np.linspace(0, 1, int(rng.integers(30, 41)))
        if informative == "shape":
            peak = 0.2 if label else 0.8
            bump = np.where(t < peak, t / peak, (1 - t) / (1 - peak))
            x = bump + rng.normal(0, 4) + rng.normal(0, 0.02, t.size)
        else:
            x = label + rng.normal(0, 0.3, t.size)
        X.append(x[:, None].astype(np.float32))
    return X, y


def test_packed_gradient_is_numpys_per_series():
    X = ragged(12)
    assert min(len(x) for x in X) == 1 and 2 in {len(x) for x in X}  # both edge cases
    batch = as_source(X).read(np.arange(len(X)))
    slopes = packed_gradient(batch.values, batch.offsets).numpy()
    expected = [np.gradient(x, axis=0) if len(x) > 1 else np.zeros_like(x) for x in X]
    np.testing.assert_array_equal(slopes, np.concatenate(expected))


@pytest.mark.parametrize("lazy", [False, True], ids=["packed", "lazy"])
def test_a_derivative_source_reads_series_and_scaled_derivatives(lazy):
    X = ragged(10)
    scale = np.array([0.5, 2.0, 3.0], dtype=np.float32)
    source = DerivativeSource(as_source(LazySequence(X) if lazy else X), scale)
    expected = numpy_derivatives(X, scale)
    assert source.n_features == 6 and len(source) == 10
    np.testing.assert_array_equal(source.lengths, [len(x) for x in X])
    index = np.array([7, 2, 2, 9])
    for got, want in zip(split_batch(source.read(index)), [expected[i] for i in index]):
        np.testing.assert_array_equal(got, want)
    subset = source.subset(np.array([3, 1]))
    for got, want in zip(split_batch(subset.read(np.array([1, 0]))), [expected[1], expected[3]]):
        np.testing.assert_array_equal(got, want)


def test_the_scale_gives_each_derivative_its_features_spread():
    X = [x * np.array([1.0, 10.0, 0.1], dtype=np.float32) for x in ragged(30)]
    scale = derivative_scale(as_source(X), chunk=7)
    stacked = np.concatenate(numpy_derivatives(X, scale)).astype(np.float64)
    # float32 data; the moments are float64 over a few hundred rows.
    np.testing.assert_allclose(stacked[:, 3:].std(0), stacked[:, :3].std(0), rtol=1e-5)


def test_appended_derivatives_fit_as_if_they_were_given():
    X, y = level_or_shape(40, "shape")
    clf = DejaVidClassifier(derivatives=True, max_epochs=4, random_state=0).fit(X, y)
    assert clf.n_features_in_ == 1 and clf.centroids_.shape[2] == 2
    assert clf.derivative_results_ is None  # nothing chosen
    given = numpy_derivatives(X, clf.derivative_scale_)
    plain = DejaVidClassifier(derivatives=False, max_epochs=4, random_state=0).fit(given, y)
    assert plain.derivative_scale_ is None
    # The same float32 features in the same order: the same fit, up to float32 rounding
    # of the features' standard deviations (the one quantity computed from other data).
    np.testing.assert_allclose(clf.centroids_, plain.centroids_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.weights_, plain.weights_, rtol=1e-5)
    X_test, _ = level_or_shape(20, "shape", seed=1)
    np.testing.assert_allclose(
        clf.predict_proba(X_test),
        plain.predict_proba(numpy_derivatives(X_test, clf.derivative_scale_)), rtol=1e-4,
    )


@pytest.mark.parametrize("informative, appended", [("shape", True), ("level", False)])
def test_auto_appends_derivatives_only_where_the_cross_fits_gain(informative, appended):
    X, y = level_or_shape(60, informative)
    clf = DejaVidClassifier(max_epochs=0, random_state=0).fit(X, y)
    results = clf.derivative_results_
    np.testing.assert_array_equal(results["derivatives"], [False, True])
    without, with_ = results["accuracy"]
    assert (clf.derivative_scale_ is not None) is appended
    assert clearly_better(with_, without, len(y)) is appended
    if appended:  # the level hides the shape; the slopes do not
        assert without < 0.8 and with_ > 0.95
    X_test, y_test = level_or_shape(60, informative, seed=1)
    assert clf.score(X_test, y_test) > 0.9


@pytest.mark.parametrize("informative", ["shape", "level"])
def test_auto_fits_as_the_choice_it_made_would_if_given(informative):
    # The choice draws from copies of the random state: what follows it is the fit that
    # the chosen setting, given, makes (the same code on the same data: the same arrays).
    X, y = level_or_shape(40, informative)
    auto = DejaVidClassifier(max_epochs=3, random_state=1).fit(X, y)
    given = DejaVidClassifier(
        max_epochs=3, random_state=1, derivatives=auto.derivative_scale_ is not None
    ).fit(X, y)
    assert_same_fit(auto, given)
    np.testing.assert_array_equal(auto.predict_proba(X), given.predict_proba(X))


def test_auto_scores_without_derivatives_as_a_fit_without_them():
    # The untrained cross-fit without derivatives is the one a derivatives=False fit runs
    # first, on the same folds and seeds.
    X, y = level_or_shape(40, "shape")
    auto = DejaVidClassifier(max_epochs=0, random_state=3).fit(X, y)
    plain = DejaVidClassifier(max_epochs=0, derivatives=False, random_state=3).fit(X, y)
    assert auto.derivative_results_["accuracy"][0] == (
        plain.cv_results_["accuracy"][plain.best_index_]
    )


@pytest.mark.parametrize("params", [{"cv": None}, {"validation_fraction": 0.3},
                                    {"init": "array"}])
def test_auto_keeps_the_series_where_nothing_chooses(params):
    X, y = level_or_shape(30, "shape")
    if params.get("init") == "array":
        params = {"init": np.stack([np.resize(X[0], (8, 1)), np.resize(X[1], (8, 1))]),
                  "centroid_length": 8, "n_prototypes": 1}
    clf = DejaVidClassifier(max_epochs=0, random_state=0, **params)
    with warnings.catch_warnings():
        # cv=None: the temperature comes from training distances, with an InputWarning;
        # without the slopes nothing tells these classes apart, with a ConvergenceWarning.
        warnings.simplefilter("ignore", InputWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.derivative_scale_ is None and clf.derivative_results_ is None
    assert clf.centroids_.shape[2] == 1


def test_a_warm_start_keeps_the_fitted_features():
    X, y = level_or_shape(30, "shape")
    clf = DejaVidClassifier(derivatives=True, max_epochs=2, random_state=0).fit(X, y)
    scale = clf.derivative_scale_.copy()
    with pytest.warns(InputWarning, match="training distances"):  # no cross-fits
        clf.set_params(warm_start=True, derivatives="auto").fit(X, y)
    np.testing.assert_array_equal(clf.derivative_scale_, scale)
    assert clf.centroids_.shape[2] == 2
    clf.set_params(derivatives=False)
    with pytest.raises(InputError, match="derivatives=False differs"):
        clf.fit(X, y)
    assert clf.centroids_.shape[2] == 2  # a failed fit leaves the estimator as it was
