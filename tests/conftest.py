"""Helpers shared by the test modules, imported as ``from conftest import ...``."""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# The repository's root.
ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(**variables):
    """``os.environ`` plus ``variables``, with the repository first on ``PYTHONPATH`` so that
    a child interpreter imports this checkout's sktdtw."""
    path = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONPATH=path, **variables)


class LazySequence(Sequence):
    """A sequence that is not a list: items handed out one at a time, as a lazy data source
    does (the estimators read it in batches)."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def assert_same_fit(a, b):
    """Two fitted classifiers learned the same: equal arrays, epochs and history (the
    epochs' timings aside)."""
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    assert (a.best_index_, a.n_epochs_) == (b.best_index_, b.n_epochs_)
    assert a.history_.keys() == b.history_.keys()
    for key in a.history_:
        if key == "seconds":
            assert len(a.history_[key]) == len(b.history_[key])
        else:
            assert a.history_[key] == b.history_[key], key


def learnable_ragged(n, seed=0):
    """``n`` ragged float32 series of 4 to 8 steps and 3 features, the odd ones shifted by
    3, so that labels ``arange(n) % 2`` can be learned (a fit of noise rightly warns that
    its out-of-fold accuracy is chance)."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(int(t), 3)) + 3.0 * (i % 2)).astype(np.float32)
            for i, t in enumerate(rng.integers(4, 9, n))]


def object_array(items):
    """A 1-D object array of ``items`` (numpy would stack equal shapes)."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def interrupt_after_epoch(monkeypatch, epochs):
    """Raise KeyboardInterrupt once the checkpoint of ``epochs`` epochs is written, as a
    kill (or Ctrl-C) between two epochs would."""
    import sktdtw._training.checkpoint as checkpoint_module

    save = checkpoint_module.save_checkpoint

    def save_then_stop(path, state):
        save(path, state)
        if state["epoch"] == epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module, "save_checkpoint", save_then_stop)
