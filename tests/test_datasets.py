"""Tests of the synthetic data sets."""

import math

import numpy as np
import pytest

from sktdtw.datasets import make_temporal_order, make_transients


def test_shapes_lengths_and_labels():
    X, y = make_temporal_order(
        n_samples=50, n_classes=4, n_features=5, n_events=3, min_length=7, max_length=30,
        random_state=0,
    )
    assert len(X) == len(y) == 50
    assert all(x.ndim == 2 and x.shape[1] == 5 for x in X)
    lengths = np.array([len(x) for x in X])
    assert lengths.min() >= 7 and lengths.max() <= 30 and len(set(lengths)) > 5
    np.testing.assert_array_equal(np.bincount(y), [13, 13, 12, 12])


def test_seeded():
    a = make_temporal_order(n_samples=10, random_state=3)
    b = make_temporal_order(n_samples=10, random_state=3)
    c = make_temporal_order(n_samples=10, random_state=4)
    np.testing.assert_array_equal(a[1], b[1])
    assert all(np.array_equal(p, q) for p, q in zip(a[0], b[0]))
    assert not all(p.shape == q.shape and np.allclose(p, q) for p, q in zip(a[0], c[0]))


def _event_order(x):
    """The sequence of distinct rows of a noise-free series, in order of appearance."""
    changes = np.flatnonzero(np.any(x[1:] != x[:-1], axis=1)) + 1
    return [tuple(row) for row in x[np.concatenate([[0], changes])]]


def test_classes_share_events_and_differ_only_in_order():
    n_events = 4
    X, y = make_temporal_order(
        n_samples=60, n_classes=3, n_events=n_events, min_length=10, max_length=20,
        noise=0.0, random_state=1,
    )
    orders = [_event_order(x) for x in X]
    assert all(len(order) == n_events for order in orders)  # every event, each once
    events = {frozenset(order) for order in orders}
    assert len(events) == 1  # the same events in every class
    by_class = [{tuple(o) for o, label in zip(orders, y) if label == k} for k in range(3)]
    assert all(len(orders_k) == 1 for orders_k in by_class)  # one order per class
    assert len(set.union(*by_class)) == 3  # and the orders differ


def test_noise_level():
    X, _ = make_temporal_order(n_samples=30, noise=0.5, random_state=2)
    clean, _ = make_temporal_order(n_samples=30, noise=0.0, random_state=2)
    residual = np.concatenate([x - c for x, c in zip(X, clean)])
    assert residual.std() == pytest.approx(0.5, rel=0.1)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_events=5, min_length=4), "min_length=4 must be at least n_events=5"),
        (dict(min_length=10, max_length=9), "max_length=9 must be >= min_length=10"),
        (dict(n_classes=7, n_events=3), f"exceeds the {math.factorial(3)} orders"),
        (dict(n_classes=1), "n_classes"),
        (dict(noise=-1.0), "noise"),
    ],
)
def test_errors(params, match):
    with pytest.raises(ValueError, match=match):
        make_temporal_order(**params)


def test_transients_are_the_four_shapes_at_onsets_in_range():
    # Without noise each series is exactly its class's shape from its onset on: found
    # again here from the first nonzero step (the sine's is one after its onset, as
    # sin(0) = 0), against shapes written out independently.
    X, y = make_transients(n_samples=40, n_timestamps=200, noise=0.0, random_state=0)
    assert len(X) == 40 and all(x.shape == (200, 1) for x in X)
    np.testing.assert_array_equal(np.bincount(y), [10, 10, 10, 10])
    onsets = []
    for x, label in zip(X, y):
        series = x[:, 0]
        onset = int(np.flatnonzero(series)[0]) - (label == 2)
        expected = np.zeros(200)
        if label == 0:
            expected[onset:] = 1
        elif label == 1:
            expected[onset:] = 1
            expected[onset:onset + 6] = 2
        elif label == 2:
            expected[onset:onset + 40] = np.sin(np.arange(40) / 40 * 2 * np.pi)
        else:
            expected[onset:onset + 50] = 1
        np.testing.assert_allclose(series, expected, atol=1e-12)
        onsets.append(onset)
    assert min(onsets) >= 44 and max(onsets) < 116 and len(set(onsets)) > 20


def test_transients_noise_and_seed():
    a, ya = make_transients(n_samples=20, noise=0.5, random_state=1)
    b, yb = make_transients(n_samples=20, noise=0.5, random_state=1)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    clean, _ = make_transients(n_samples=20, noise=0.0, random_state=1)
    residual = np.concatenate([p - q for p, q in zip(a, clean)])
    assert abs(residual.std() - 0.5) < 0.02
