"""Tests of the synthetic data sets."""

import math

import numpy as np
import pytest

from sktdtw.datasets import make_temporal_order


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
