"""Tests of several prototypes per class, feature scaling, calibrated probabilities and the
ConvergenceWarning (issue: good predictions by default)."""

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, roc_auc_score

from sktdtw import DBAInitializer, DejaVidClassifier
from sktdtw._errors import InputWarning
from sktdtw._model.calibration import fit_calibration, fit_temperature
from sktdtw._model.initialization import auto_centroid_length
from sktdtw._model.scoring import class_distances
from sktdtw.datasets import make_temporal_order
from sktdtw.dtw import weighted_dtw

pytestmark = pytest.mark.numerics


def _fast(**params):
    defaults = dict(max_epochs=4, dba_max_iter=3, cv=None, calibration=None, random_state=0)
    return DejaVidClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def temporal():
    return make_temporal_order(
        n_samples=60, n_classes=3, n_features=2, n_events=3, min_length=10, max_length=20,
        random_state=1,
    )


def test_prototype_distances_are_the_brute_force_min(temporal):
    X, y = temporal
    clf = _fast(n_prototypes=3, centroid_length=5).fit(X, y)
    assert clf.centroids_.shape == (9, 5, 2) and clf.weights_.shape == (9, 5, 2)
    assert clf.centroid_class_.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # Brute force: every sample against every prototype, one op call per prototype.
    per_prototype = np.stack([
        weighted_dtw(
            [torch.from_numpy(x.astype(np.float32)) for x in X],
            torch.from_numpy(clf.centroids_[j:j + 1]), torch.from_numpy(clf.weights_[j:j + 1]),
        )[:, 0].numpy()
        for j in range(9)
    ], axis=1)
    expected = np.stack(
        [per_prototype[:, clf.centroid_class_ == k].min(1) for k in range(3)], axis=1
    )
    np.testing.assert_allclose(clf.transform(X), expected, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[expected.argmin(1)])


def test_one_prototype_is_the_single_centroid_model(temporal):
    X, y = temporal
    clf = _fast(centroid_length=5, n_prototypes=1).fit(X, y)
    assert clf.centroid_class_.tolist() == [0, 1, 2]
    direct = weighted_dtw(
        [torch.from_numpy(x.astype(np.float32)) for x in X],
        torch.from_numpy(clf.centroids_), torch.from_numpy(clf.weights_),
    ).numpy()
    # transform calls the same kernels on the same float32 values: bit for bit.
    np.testing.assert_array_equal(clf.transform(X), direct.astype(np.float64))
    # The class-distance reduction is the identity (the same tensor) with one per class.
    dist = torch.rand(4, 3)
    assert class_distances(dist, np.arange(3)) is dist


def test_initializer_one_prototype_is_plain_dba(temporal):
    X, y = temporal
    one = DBAInitializer(centroid_length=5, max_iter=4, random_state=0).fit(X, y)
    explicit = DBAInitializer(centroid_length=5, max_iter=4, n_prototypes=1, random_state=0)
    np.testing.assert_array_equal(one.centroids_, explicit.fit(X, y).centroids_)


def test_prototypes_find_the_modes_of_a_class():
    # Class 0 has two shapes (a bump early or late), class 1 a flat line: one centroid
    # per class averages class 0's shapes away, two prototypes keep both.
    rng = np.random.RandomState(0)
    early = np.r_[np.ones(5), np.zeros(15)][:, None]
    late = np.r_[np.zeros(15), np.ones(5)][:, None]
    X = [early + 0.05 * rng.randn(20, 1) for _ in range(10)]
    X += [late + 0.05 * rng.randn(20, 1) for _ in range(10)]
    X += [0.05 * rng.randn(20, 1) for _ in range(10)]
    y = np.repeat([0, 0, 1], 10)
    init = DBAInitializer(centroid_length=20, n_prototypes=2, random_state=0).fit(X, y)
    bumps = init.centroids_[init.centroid_class_ == 0, :, 0]
    first_peaks = sorted(int(np.argmax(b)) for b in bumps)
    assert first_peaks[0] < 5 and first_peaks[1] >= 15


def test_class_with_fewer_series_than_prototypes():
    X, y = make_temporal_order(n_samples=30, n_classes=2, random_state=0)
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:2]]
    X, y = [X[i] for i in keep], y[keep]
    clf = _fast(n_prototypes=4, centroid_length=6).fit(X, y)
    counts = np.bincount(clf.centroid_class_)
    # At most one prototype per 5 series of a class, and at least one.
    assert counts.tolist() == [min(4, np.sum(y == 0) // 5), 1]
    assert clf.transform(X).shape == (len(X), 2)


def test_initializer_takes_a_count_per_class(temporal):
    X, y = temporal
    init = DBAInitializer(centroid_length=5, max_iter=2, n_prototypes=np.array([1, 3, 2]),
                          random_state=0).fit(X, y)
    assert np.bincount(init.centroid_class_).tolist() == [1, 3, 2]
    for counts in (np.array([1, 2]), np.array([1.0, 2.0, 2.0]), np.array([0, 1, 1]),
                   np.array([1, 1, 21])):  # 20 series per class
        with pytest.raises(ValueError, match="n_prototypes must be an int or 3 integers"):
            DBAInitializer(centroid_length=5, n_prototypes=counts).fit(X, y)


def test_cross_fits_start_from_the_final_models_prototypes(monkeypatch):
    # 10 series per class: the model on all of them gets 2 prototypes per class (one per 5
    # series); a cross-fit on 2/3 of them alone would get 1 per class, and its out-of-fold
    # scores would choose for another model than the one kept.
    import sktdtw._classifier as classifier

    X, y = make_temporal_order(n_samples=20, n_classes=2, random_state=0)
    started = []

    def recording(*args, **kwargs):
        prototypes = initial_prototypes(*args, **kwargs)
        started.append(np.bincount(prototypes.centroid_class).tolist())
        return prototypes

    initial_prototypes = classifier.initial_prototypes
    monkeypatch.setattr(classifier, "initial_prototypes", recording)
    clf = _fast(n_prototypes=3, centroid_length=6, cv=3, calibration="temperature").fit(X, y)
    # Three untrained cross-fits without the derivatives and three with them (choosing
    # whether to append them), three cross-fits, then the final model.
    assert started == [[2, 2]] * 10
    assert np.bincount(clf.centroid_class_).tolist() == [2, 2]


def test_feature_scaling_makes_units_irrelevant(temporal):
    X, y = temporal
    # Powers of two: the rescaled data are exact, so the rescaled fit must be too.
    per_feature, common = np.array([2.0**10, 2.0**-10]), 2.0**12
    for scaling, scale in (("standard", per_feature), ("pooled", common)):
        rescaled = [x * scale for x in X]
        a = _fast(centroid_length=5, feature_scaling=scaling).fit(X, y)
        b = _fast(centroid_length=5, feature_scaling=scaling).fit(rescaled, y)
        # Weights scale by 1 / scale: the distances do not change.
        np.testing.assert_allclose(b.transform(rescaled), a.transform(X), rtol=1e-5)
        np.testing.assert_allclose(b.centroids_, a.centroids_ * scale, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(b.predict(rescaled), a.predict(X))
    # Without feature scaling the second feature is invisible next to the first.
    rescaled = [x * per_feature for x in X]
    reference = _fast(centroid_length=5, feature_scaling="standard").fit(X, y)
    c = _fast(centroid_length=5, feature_scaling=None).fit(rescaled, y)
    assert not np.allclose(c.transform(rescaled), reference.transform(X), rtol=1e-2)


def test_binary_probabilities_rank_as_the_distance_difference():
    X, y = make_temporal_order(n_samples=80, n_classes=2, noise=1.0, random_state=3)
    clf = DejaVidClassifier(max_epochs=4, random_state=0).fit(X[:40], y[:40])
    X_test, y_test = X[40:], y[40:]
    proba = clf.predict_proba(X_test)
    assert len(np.unique(np.round(proba[:, 1], 12))) > 2
    np.testing.assert_allclose(proba.sum(1), 1.0)
    # The class distances computed here: the op on the fitted arrays, the minimum over each
    # class's prototypes; classes_[1] is the nearer class where the margin is positive.
    per_prototype = weighted_dtw(
        [torch.from_numpy(x.astype(np.float32)) for x in X_test],
        torch.from_numpy(clf.centroids_), torch.from_numpy(clf.weights_),
    ).double().numpy()
    dist = np.stack([per_prototype[:, clf.centroid_class_ == k].min(1) for k in range(2)], 1)
    power = clf.distance_power_
    margin = dist[:, 0] ** power - dist[:, 1] ** power
    # P(classes_[1]) is the logistic function of the margin (of the distances to the fitted
    # power) over the temperature, shifted by the difference of the class-prior intercepts
    # (to 1e-5: a float32 ulp of a distance moves the margin / temperature by up to about
    # 1e-6) ...
    shift = clf.intercept_[1] - clf.intercept_[0]
    np.testing.assert_allclose(proba[:, 1], expit(margin / clf.temperature_ + shift), rtol=1e-5)
    # ... so it ranks the series as the margin does: the same AUC, but for (positive,
    # negative) pairs that rounding may tie or swap (probabilities equal, or margins within
    # float32 rounding of the distances of each other).
    positive = y_test == clf.classes_[1]
    near = np.abs(margin[positive][:, None] - margin[~positive][None]) <= 1e-5 * dist.max() ** power
    tied = proba[positive, 1][:, None] == proba[~positive, 1][None]
    auc = roc_auc_score(y_test, proba[:, 1])
    assert abs(auc - roc_auc_score(y_test, margin)) <= (near | tied).mean()
    assert auc >= 0.9  # chance: 0.5
    # decision_function is the log-odds of classes_[1].
    np.testing.assert_allclose(
        clf.decision_function(X[40:]), np.log(proba[:, 1] / proba[:, 0]), rtol=1e-6, atol=1e-9
    )


def test_probabilities_beat_the_class_frequencies(temporal):
    X, y = temporal
    clf = DejaVidClassifier(max_epochs=6, random_state=0).fit(X[:40], y[:40])
    assert clf.temperature_ > 0
    prior = np.bincount(y[:40]) / 40
    assert log_loss(y[40:], clf.predict_proba(X[40:])) < log_loss(
        y[40:], np.tile(prior, (20, 1))
    )


def test_without_calibration_probabilities_are_the_training_logits(temporal):
    X, y = temporal
    clf = _fast(calibration=None, logit_norm="zscore").fit(X, y)
    assert clf.temperature_ is None
    dist = clf.transform(X)
    z = -(dist - dist.mean(1, keepdims=True)) / (dist.std(1, ddof=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(clf.predict_proba(X), softmax(z, axis=1), rtol=1e-6)


def test_fit_temperature_recovers_the_temperature():
    rng = np.random.RandomState(0)
    logits = rng.randn(20000, 4) * 3.0
    true_temperature = 2.5
    p = softmax(logits / true_temperature, axis=1)
    targets = np.array([rng.choice(4, p=row) for row in p])
    assert fit_temperature(logits, targets) == pytest.approx(true_temperature, rel=0.05)
    # Logits that carry no information give a huge temperature, not a degenerate one.
    assert fit_temperature(rng.randn(2000, 3), rng.randint(3, size=2000)) > 10
    assert fit_temperature(np.zeros((10, 3)), np.zeros(10, dtype=int)) == 1.0


def test_fit_temperature_is_finite_and_well_conditioned_on_separable_logits():
    # Separated classes: the hard targets' log-loss is 0 to float precision for every small
    # temperature, so its argmin would be rounding noise (and certainty). Platt's targets,
    # (n_c + 1) / (n_c + 2) on the true class, have one minimum that a perturbation of the
    # logits moves only in proportion.
    rng = np.random.RandomState(1)
    targets = np.repeat(np.arange(3), 20)
    logits = rng.randn(60, 3)
    logits[np.arange(60), targets] += 40.0
    temperature = fit_temperature(logits, targets)
    moved = fit_temperature(logits * (1 + 1e-12 * rng.randn(*logits.shape)), targets)
    assert moved == pytest.approx(temperature, rel=1e-4)
    true_class = softmax(logits / temperature, axis=1)[np.arange(60), targets]
    assert true_class.mean() == pytest.approx(21 / 22, abs=0.01)


def _cross_entropy(logits, targets):
    return -np.mean(np.log(softmax(logits, axis=1)[np.arange(len(targets)), targets]))


def _smoothed_cross_entropy(logits, targets):
    """Platt's smoothed-target cross-entropy, as fit_temperature and fit_calibration
    minimise it."""
    n_classes = logits.shape[1]
    n_c = np.bincount(targets, minlength=n_classes)[targets]
    on = (n_c + 1) / (n_c + 2)
    soft = np.repeat(((1 - on) / (n_classes - 1))[:, None], n_classes, axis=1)
    soft[np.arange(len(targets)), targets] = on
    return -(soft * np.log(softmax(logits, axis=1))).sum(1).mean()


def _drawn(dist, temperature, weight, prior, rng):
    """Labels drawn from softmax(-dist / temperature + weight * log prior)."""
    p = softmax(-dist / temperature + weight * np.log(prior), axis=1)
    return np.array([rng.choice(len(prior), p=row) for row in p])


def test_fit_calibration_recovers_the_temperature_and_the_prior_weight():
    # Labels drawn from softmax(-dist / 2.5 + 0.6 * log prior) over unbalanced classes.
    rng = np.random.RandomState(0)
    prior = np.array([0.6, 0.3, 0.1])
    dist = np.abs(rng.randn(20000, 3)) * 4.0
    targets = _drawn(dist, 2.5, 0.6, prior, rng)
    calibration = fit_calibration(dist, targets, prior)
    assert calibration.power == 1.0
    assert calibration.temperature == pytest.approx(2.5, rel=0.05)
    weight = calibration.intercept / np.log(prior)
    np.testing.assert_allclose(weight, weight[0], rtol=1e-12)  # one weight for all classes
    assert weight[0] == pytest.approx(0.6, abs=0.05)
    # The fitted triple is the brute-force minimum of the smoothed cross-entropy: no
    # (t, a) on a grid around it does better, nor the best (t, a) of another power.
    def smoothed(t, a, power=1.0):
        return _smoothed_cross_entropy(-dist ** power / t + a * np.log(prior), targets)

    best = smoothed(calibration.temperature, weight[0])
    for t in calibration.temperature * np.array([0.98, 1.0, 1.02]):
        for a in np.clip(weight[0] + np.array([-0.02, 0.0, 0.02]), 0, 1):
            assert best <= smoothed(t, a) + 1e-9
    for power in (0.5, 0.25):
        t = fit_temperature(-dist ** power, targets, 0.6 * np.log(prior))
        assert best < smoothed(t, 0.6, power)


def test_fit_calibration_recovers_the_power_of_the_distances():
    # Labels drawn from softmax(-sqrt(dist) / 0.4) of balanced classes: the power 1/2.
    rng = np.random.RandomState(1)
    dist = rng.exponential(4.0, size=(8000, 3))
    targets = _drawn(np.sqrt(dist), 0.4, 0.0, np.full(3, 1 / 3), rng)
    calibration = fit_calibration(dist, targets, np.full(3, 1 / 3))
    assert calibration.power == 0.5
    assert calibration.temperature == pytest.approx(0.4, rel=0.05)
    # Its logits, in units 1 / 3.7 as large, are the same calibration's.
    moved = calibration.in_units(3.7)
    np.testing.assert_allclose(moved.logits(dist * 3.7), calibration.logits(dist), rtol=1e-12)


def test_a_tail_of_far_samples_does_not_flatten_the_calibration():
    # Issue 18 (Covid3Month_disc): a few samples far from some class set the temperature
    # of the distances themselves so large that the class prior decided nearly every
    # prediction (60 of 61 test series the commonest class, accuracy 0.54 against 0.67 for
    # the nearest centroid). Here 5 % of the distances are multiplied by e to e^3.5.
    rng = np.random.RandomState(0)
    prior = np.array([0.5, 0.3, 0.2])
    targets = rng.choice(3, 600, p=prior)
    dist = np.abs(1 + 0.5 * rng.randn(600, 3)) + 1.0 * (np.arange(3) != targets[:, None])
    far = rng.rand(600, 3) < 0.05
    dist = np.where(far, dist * np.exp(1 + 2.5 * rng.rand(600, 3)), dist)
    nearest = np.mean(dist.argmin(1) == targets)
    linear = fit_temperature(-dist, targets, np.log(prior))
    assert np.mean((-dist / linear + np.log(prior)).argmax(1) == targets) < nearest - 0.15
    calibration = fit_calibration(dist, targets, prior)
    assert calibration.power < 1
    assert np.mean(calibration.logits(dist).argmax(1) == targets) >= nearest - 0.01
    assert _smoothed_cross_entropy(calibration.logits(dist), targets) < (
        _smoothed_cross_entropy(-dist / linear + np.log(prior), targets) - 0.2
    )


def test_fit_calibration_falls_back_to_the_class_frequencies_not_to_uniform():
    # Distances that carry no information about unbalanced classes: the temperature alone
    # can only reach the uniform distribution, whose log-loss is above the prior's (the
    # Covid3Month_disc failure of issue 18); with the prior weight, the frequencies.
    rng = np.random.RandomState(2)
    prior = np.array([0.7, 0.2, 0.1])
    targets = rng.choice(3, size=3000, p=prior)
    dist = np.abs(rng.randn(3000, 3))
    calibration = fit_calibration(dist, targets, prior)
    assert calibration.intercept / np.log(prior) == pytest.approx(1.0, abs=0.05)
    prior_loss = _cross_entropy(np.tile(np.log(prior), (3000, 1)), targets)
    assert _cross_entropy(calibration.logits(dist), targets) <= prior_loss + 0.01
    assert _cross_entropy(-dist / fit_temperature(-dist, targets), targets) > prior_loss + 0.1


def test_fit_calibration_on_balanced_classes_is_the_temperature_alone():
    rng = np.random.RandomState(3)
    targets = np.repeat(np.arange(4), 25)
    dist = np.abs(rng.randn(100, 4)) + 1.0
    dist[np.arange(100), targets] -= 1.0
    calibration = fit_calibration(dist, targets, np.full(4, 0.25))
    # The same search, bit for bit, at the fitted power.
    assert calibration.temperature == fit_temperature(-dist ** calibration.power, targets)
    np.testing.assert_array_equal(calibration.intercept, np.zeros(4))


# So noisy that the kept model's out-of-fold predictions are no better than the commonest
# class: fit says so, rightly; what is tested here is how predict follows predict_proba.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_predict_is_the_argmax_of_the_calibrated_probabilities():
    # Unbalanced, noisy classes (45 / 15 training series): the fitted intercept favours the
    # frequent class, and predict follows predict_proba, not the bare distances.
    X, y = make_temporal_order(n_samples=160, n_classes=2, noise=3.0, random_state=5)
    keep = np.r_[np.flatnonzero(y == 0)[:45], np.flatnonzero(y == 1)[:15]]
    rest = np.setdiff1d(np.arange(len(y)), keep)
    clf = DejaVidClassifier(max_epochs=4, random_state=0).fit([X[i] for i in keep], y[keep])
    X_test = [X[i] for i in rest]
    prior = np.array([45, 15]) / 60
    weight = clf.intercept_ / np.log(prior)
    assert 0 <= weight[0] <= 1 and weight[0] == pytest.approx(weight[1], rel=1e-12)
    proba = clf.predict_proba(X_test)
    np.testing.assert_array_equal(clf.predict(X_test), clf.classes_[proba.argmax(1)])
    logits = -clf.transform(X_test) ** clf.distance_power_ / clf.temperature_ + clf.intercept_
    np.testing.assert_allclose(proba, softmax(logits, axis=1), rtol=1e-12)


def test_warning_when_training_learns_nothing():
    # Identical series with labels to tell apart: no model can do better than the
    # commonest class, and argmin over tied distances picks the rarer class 0.
    X = [np.sin(np.linspace(0, 3, 12))[:, None] for _ in range(12)]
    y = np.r_[np.zeros(4, int), np.ones(8, int)]
    with pytest.warns(ConvergenceWarning, match="training did not help"):
        _fast().fit(X, y)


def test_no_warning_when_training_helps(temporal):
    X, y = temporal
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _fast(max_epochs=8).fit(X, y)


@pytest.mark.parametrize(
    "lengths, expected", [([33] * 5, 16), ([24], 12), ([5, 6, 7], 8), ([1460], 64)]
)
def test_auto_centroid_length(lengths, expected):
    assert auto_centroid_length(np.array(lengths)) == expected


def test_auto_centroid_length_is_used(temporal):
    X, y = temporal
    clf = _fast().fit(X, y)
    assert clf.centroids_.shape[1] == auto_centroid_length([len(x) for x in X])


def test_bad_prototype_settings(temporal):
    X, y = temporal
    with pytest.raises(ValueError, match="init='mean' gives one centroid per class"):
        _fast(n_prototypes=2, init="mean").fit(X, y)
    with pytest.raises(ValueError, match="n_classes \\* n_prototypes"):
        _fast(n_prototypes=2, centroid_length=3, init=np.zeros((3, 3, 2))).fit(X, y)
    with pytest.raises(ValueError, match="feature_weights must be 2 finite positive"):
        DBAInitializer(feature_weights=[1.0, -1.0]).fit(X, y)


def test_defaults_on_a_real_data_set():
    # aeon's BasicMotions ships inside its wheel (no download): 4 classes, 6 features.
    from aeon.datasets import load_basic_motions

    (X_train, y_train), (X_test, y_test) = (
        load_basic_motions(split=split) for split in ("train", "test")
    )
    clf = DejaVidClassifier(random_state=0).fit([x.T for x in X_train], y_train)
    X_test = [x.T for x in X_test]
    assert clf.score(X_test, y_test) >= 0.85  # chance: 0.25
    prior = np.full((len(y_test), 4), 0.25)
    assert log_loss(y_test, clf.predict_proba(X_test)) < log_loss(y_test, prior)


def test_defaults_on_temporal_order():
    X, y = make_temporal_order(n_samples=120, n_classes=3, random_state=0)
    clf = DejaVidClassifier(random_state=0).fit(X[:60], y[:60])
    assert clf.score(X[60:], y[60:]) >= 0.8  # chance: 0.33


def test_feature_std_of_constant_and_offset_features():
    from sktdtw._model.parameters import feature_std
    from sktdtw._source import as_source

    rng = np.random.default_rng(0)
    X = [np.c_[np.full(37, 0.1), 1000.3 + 1e-3 * rng.normal(size=37), rng.normal(size=37)]
         .astype(np.float32) for _ in range(30)]
    std = feature_std(as_source(X), chunk=7)
    expected = np.concatenate(X).astype(np.float64).std(0)
    assert std[0] == 1.0  # constant: unit scale, not 1 / rounding noise
    np.testing.assert_allclose(std[1:], expected[1:], rtol=1e-6)


def test_a_temperature_fitted_on_training_distances_says_so(temporal):
    # Issue 18, item 6: a warm start (test log-loss 6.17 against 0.39 out of fold) and
    # cv=None fitted the temperature on training distances without a word.
    X, y = temporal
    clf = DejaVidClassifier(max_epochs=2, cv=2, random_state=0).fit(X, y)  # no warning
    with pytest.warns(InputWarning, match=r"training distances \(warm_start=True"):
        clf.set_params(warm_start=True).fit(X, y)
    with pytest.warns(InputWarning, match=r"training distances \(cv=None\)"):
        DejaVidClassifier(max_epochs=2, cv=None, random_state=0).fit(X, y)


def test_initializer_must_match_the_prototype_count(temporal):
    X, y = temporal
    init = DBAInitializer(centroid_length=5, n_prototypes=1)
    with pytest.raises(ValueError, match="init has n_prototypes=1 but the classifier has "
                                         "n_prototypes=2"):
        _fast(centroid_length=5, n_prototypes=2, init=init).fit(X, y)
    assert _fast(centroid_length=5, n_prototypes=1, init=init).fit(X, y).centroids_.shape[0] == 3
