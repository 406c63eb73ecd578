"""Tests of dba_barycenter and DBAInitializer, against tslearn as an independent oracle."""

from itertools import combinations

import numpy as np
import pytest
import torch
from tslearn.barycenters import dtw_barycenter_averaging
from tslearn.metrics import dtw_path_from_metric

from sktdtw import DBAInitializer, dba_barycenter
from sktdtw._model.barycenters import _aligned_medians
from sktdtw._model.barycenters import resample as _resample
from sktdtw.datasets import make_temporal_order
from sktdtw.dtw import weighted_dtw


def _ragged(n, length_range, n_features, seed):
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(rng.integers(*length_range), n_features)).astype(np.float32)
        for _ in range(n)
    ]


def _oracle_dba(series, barycenter, n_iter):
    """DBA updates with tslearn's L1 ("cityblock") DTW alignments of the series as they
    are (diagonal moves allowed): each step the median of the frames aligned to it."""
    for _ in range(n_iter):
        aligned = [[] for _ in barycenter]
        for x in series:
            path, _ = dtw_path_from_metric(barycenter, x, metric="cityblock")
            for i, j in path:
                aligned[i].append(x[j])
        barycenter = np.array([np.median(frames, axis=0) for frames in aligned])
    return barycenter


def _alignment_cost(series, barycenter, diagonal):
    return float(weighted_dtw(
        [torch.from_numpy(x.astype(np.float64)) for x in series],
        torch.from_numpy(barycenter[None]), torch.ones((1, *barycenter.shape),
                                                       dtype=torch.float64),
        diagonal=diagonal,
    ).sum())


def test_resample_is_linear_interpolation():
    x = np.array([[0.0, 10.0], [1.0, 20.0], [4.0, 0.0]])
    out = _resample([x], 5)[0]
    positions = np.linspace(0, 2, 5)
    for f in range(2):
        np.testing.assert_allclose(out[:, f], np.interp(positions, [0, 1, 2], x[:, f]))
    np.testing.assert_array_equal(_resample([x], 3)[0], x)
    np.testing.assert_array_equal(_resample([x[:1]], 4)[0], np.repeat(x[:1], 4, axis=0))


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "tied"])
def test_aligned_medians_are_numpy_medians_of_the_aligned_frames(ties):
    # The DBA update, one np.partition per step, against np.median of each step's frames
    # gathered one series at a time: runs of odd and even length, one frame to many, the
    # boundary frames that no-diagonal paths share, ties between equal frames, and -0.0
    # (np.median's mean turns it into +0.0), compared bit for bit, signs of zero included.
    rng = np.random.default_rng(int(ties))
    for _ in range(50):
        n, length, n_features = rng.integers(1, 6), rng.integers(1, 8), rng.integers(1, 4)
        lengths = rng.integers(length, length + 10, size=n)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        shape = (lengths.sum(), n_features)
        values = rng.integers(-2, 3, size=shape).astype(float) if ties else rng.normal(size=shape)
        values[rng.random(shape) < 0.2] = -0.0
        path = np.empty((n, length, 2), dtype=np.int32)
        for s, T in enumerate(lengths):
            cuts = np.sort(rng.choice(np.arange(1, T), length - 1, replace=False))
            lo = np.concatenate([[0], cuts])
            hi = np.concatenate([cuts - (rng.random(length - 1) < 0.5), [T - 1]])
            path[s, :, 0], path[s, :, 1] = lo, hi
        expected = np.stack([
            np.median(np.concatenate([
                values[start + a:start + b + 1] for start, (a, b) in zip(starts, path[:, i])
            ]), axis=0)
            for i in range(length)
        ])
        medians = _aligned_medians(values, starts, path)
        np.testing.assert_array_equal(medians, expected)
        np.testing.assert_array_equal(np.signbit(medians), np.signbit(expected))


def test_medoid_matches_tslearn_distances():
    # The start: the resampled series nearest, in total, to the series as they are.
    series = _ragged(9, (5, 15), 3, seed=0)
    resampled = _resample(series, 6)
    totals = [
        sum(dtw_path_from_metric(c, x, metric="cityblock")[1] for x in series)
        for c in resampled
    ]
    medoid = dba_barycenter(series, 6, max_iter=0, diagonal=True)
    np.testing.assert_array_equal(medoid, resampled[int(np.argmin(totals))])


@pytest.mark.parametrize("n_iter", [1, 4])
def test_dba_updates_match_tslearn_alignments(n_iter):
    # Shorter than the series (7 steps, series of 12 to 20): every frame is aligned, not
    # only those of a resampled copy.
    series = _ragged(8, (12, 20), 2, seed=1)
    start = dba_barycenter(series, 7, max_iter=0, diagonal=True)
    barycenter, done = dba_barycenter(
        series, 7, max_iter=n_iter, tol=0.0, diagonal=True, return_n_iter=True
    )
    assert done == n_iter
    expected = _oracle_dba([x.astype(np.float64) for x in series], start, n_iter)
    np.testing.assert_allclose(barycenter, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("length", [20, 40])
def test_close_to_tslearn_dba_from_the_same_start(length):
    # Smooth, time-warped signals of 40 steps, averaged to 20 and to 40 steps: L1 and
    # squared-Euclidean alignments agree up to a few cells and the aligned frames of a
    # step are close, so their median and mean are too: the barycenters are close.
    rng = np.random.default_rng(2)
    t = np.linspace(0, 1, 40)
    series = []
    for _ in range(10):
        warp = t ** rng.uniform(0.7, 1.4)
        series.append(np.stack([np.sin(2 * np.pi * warp), np.cos(3 * warp)], axis=1))
    start = dba_barycenter(series, length, max_iter=0, diagonal=True)
    ours = dba_barycenter(series, length, max_iter=30, diagonal=True)
    theirs = dtw_barycenter_averaging(
        np.stack(series), barycenter_size=length, init_barycenter=start, max_iter=30,
        tol=0.0,
    )
    assert np.abs(ours - theirs).mean() < 0.02
    # Each minimises its own cost: ours the L1 alignment cost, which theirs does not.
    assert _alignment_cost(series, ours, True) <= _alignment_cost(series, theirs, True)
    assert _alignment_cost(series, ours, True) < _alignment_cost(series, start, True)


def test_the_alignment_cost_never_rises_and_stops_on_the_tolerance():
    series = _ragged(10, (6, 30), 2, seed=3)
    barycenter, n_iter = dba_barycenter(series, 5, max_iter=100, return_n_iter=True)
    assert 0 < n_iter < 100
    costs = [_alignment_cost(series, dba_barycenter(series, 5, max_iter=k), False)
             for k in range(n_iter + 1)]
    assert all(b < a for a, b in zip(costs, costs[1:]))
    # The last update kept lowered the cost; the next one would not by more than tol.
    again, more = dba_barycenter(series, 5, max_iter=n_iter + 5, return_n_iter=True)
    assert more == n_iter
    np.testing.assert_array_equal(again, barycenter)
    coarse = dba_barycenter(series, 5, max_iter=100, tol=0.5, return_n_iter=True)[1]
    assert coarse < n_iter
    # Each step is a median of frames aligned to it, so it lies within their range.
    frames = np.concatenate(series)
    assert (barycenter >= frames.min(0)).all() and (barycenter <= frames.max(0)).all()


def test_single_series_is_its_own_barycenter():
    x = np.random.default_rng(4).normal(size=(6, 3))
    np.testing.assert_allclose(dba_barycenter([x], 6, diagonal=True), x, rtol=1e-6)


def test_dba_barycenter_errors():
    with pytest.raises(ValueError, match="length"):
        dba_barycenter([np.ones((3, 1))], 0)
    with pytest.raises(ValueError, match="sample 1 of series is empty"):
        dba_barycenter([np.ones((3, 1)), np.ones((0, 1))], 2)


@pytest.fixture(scope="module")
def labelled():
    X, y = make_temporal_order(
        n_samples=30, n_classes=3, n_features=2, n_events=3, min_length=6, max_length=12,
        random_state=5,
    )
    return X, np.array(["c", "a", "b"])[y]


def test_initializer_is_per_class_dba(labelled):
    X, y = labelled
    init = DBAInitializer(centroid_length=5, max_iter=10, random_state=0).fit(X, y)
    assert list(init.classes_) == ["a", "b", "c"]
    assert init.centroids_.shape == (3, 5, 2) and init.n_features_in_ == 2
    for k, label in enumerate(init.classes_):
        members = [x for x, lab in zip(X, y) if lab == label]
        expected, n_iter = dba_barycenter(members, 5, max_iter=10, return_n_iter=True)
        np.testing.assert_array_equal(init.centroids_[k], expected)
        assert init.n_iter_[k] == n_iter


def test_initializer_sampling_and_parallelism(labelled):
    X, y = labelled
    params = dict(centroid_length=4, n_samples=2, max_iter=3)
    a = DBAInitializer(**params, random_state=0).fit(X, y)
    b = DBAInitializer(**params, random_state=0, n_jobs=2).fit(X, y)
    # Worker processes run the same computation: no sum depends on the thread count.
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    c = DBAInitializer(**params, random_state=1).fit(X, y)
    assert not np.array_equal(a.centroids_, c.centroids_)
    # Every centroid is the barycenter of 2 series of its own class.
    for k, label in enumerate(a.classes_):
        members = [x for x, lab in zip(X, y) if lab == label]
        candidates = [
            dba_barycenter([members[i] for i in subset], 4, max_iter=3)
            for subset in combinations(range(len(members)), 2)
        ]
        assert any(np.array_equal(a.centroids_[k], cand) for cand in candidates)


def test_initializer_errors(labelled):
    X, y = labelled
    with pytest.raises(ValueError, match="X has 29 series but y has 30"):
        DBAInitializer().fit(X[:-1], y)
    with pytest.raises(ValueError, match="n_samples"):
        DBAInitializer(n_samples=0).fit(X, y)
