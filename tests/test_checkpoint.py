"""Checkpoints after every epoch, and resuming an interrupted fit with the same result."""

import os

import numpy as np
import pytest
import torch

import sktdtw._classifier as classifier_module
import sktdtw._training.checkpoint as checkpoint_module
from sktdtw import DejaVidClassifier
from sktdtw._training.checkpoint import read_checkpoint
from sktdtw.datasets import make_temporal_order

from conftest import LazySequence, assert_same_fit, interrupt_after_epoch


@pytest.fixture(scope="module")
def data():
    return make_temporal_order(
        n_samples=48, n_classes=3, n_features=2, n_events=3, min_length=8, max_length=16,
        random_state=0,
    )


def _clf(**params):
    defaults = dict(
        centroid_length=4, max_epochs=5, batch_size=8, dba_max_iter=3, random_state=0,
        learning_rate=0.05, validation_fraction=0.25, n_prototypes=1,
    )
    return DejaVidClassifier(**{**defaults, **params})


def _forbid(monkeypatch, name):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} must not run when resuming")

    monkeypatch.setattr(classifier_module, name, fail)


def test_resume_after_interruption_is_bit_for_bit(data, tmp_path, monkeypatch):
    X, y = data
    reference = _clf().fit(X, y)
    path = tmp_path / "run.pt"
    with monkeypatch.context() as patch:
        interrupt_after_epoch(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            _clf(checkpoint=path).fit(X, y)
    assert os.listdir(tmp_path) == ["run.pt"]  # no temporary file left behind
    reads = []
    with monkeypatch.context() as patch:
        _forbid(patch, "initial_prototypes")  # resuming skips the initialisation
        read = checkpoint_module.read_checkpoint
        patch.setattr(checkpoint_module, "read_checkpoint",
                      lambda path: reads.append(path) or read(path))
        resumed = _clf(checkpoint=str(path), verbose=0).fit(X, y)
    assert_same_fit(resumed, reference)
    assert len(reads) == 1  # checked and resumed from one read of the file


class _Interrupting(LazySequence):
    """A lazy sequence that raises KeyboardInterrupt at its ``stop_at``-th read."""

    def __init__(self, items, stop_at=None):
        super().__init__(items)
        self.stop_at = stop_at
        self.n_reads = 0

    def __getitem__(self, i):
        self.n_reads += 1
        if self.n_reads == self.stop_at:
            raise KeyboardInterrupt
        return super().__getitem__(i)


def test_resume_after_interruption_within_an_epoch(data, tmp_path):
    X, y = data
    params = dict(init=np.zeros((3, 4, 2)), validation_fraction=None, cv=None,
                  calibration=None, max_epochs=4)
    reference = _clf(**params).fit(X, y)
    path = tmp_path / "run.pt"
    # Read 1 is sample 0's metadata; then one pass for the checkpoint's digest of the
    # data, one for the features' scales and one for the initial scores, then 48 reads per
    # epoch: stop in the third epoch.
    store = _Interrupting(X, stop_at=1 + 3 * 48 + 2 * 48 + 20)
    with pytest.raises(KeyboardInterrupt):
        _clf(checkpoint=path, **params).fit(store, y)
    assert read_checkpoint(path)["epoch"] == 2
    store.stop_at = None
    resumed = _clf(checkpoint=path, **params).fit(store, y)
    assert_same_fit(resumed, reference)


def test_finished_checkpoint_returns_at_once(data, tmp_path, monkeypatch):
    X, y = data
    path = tmp_path / "run.pt"
    first = _clf(checkpoint=path).fit(X, y)
    written = path.read_bytes()
    with monkeypatch.context() as patch:
        _forbid(patch, "initial_prototypes")
        patch.setattr(torch.optim.AdamW, "step", None)  # no epoch may run
        again = _clf(checkpoint=path).fit(X, y)
    assert_same_fit(again, first)
    assert path.read_bytes() == written


def test_checkpoint_of_another_fit_is_an_error_not_overwritten(data, tmp_path):
    X, y = data
    path = tmp_path / "run.pt"
    _clf(checkpoint=path, max_epochs=2).fit(X, y)
    written = path.read_bytes()
    with pytest.raises(ValueError, match=r"different fit \(learning_rate: checkpoint 0.05, "
                                         r"this fit 0.01\)"):
        _clf(checkpoint=path, max_epochs=2, learning_rate=0.01).fit(X, y)
    with pytest.raises(ValueError, match="different fit .*n_samples: checkpoint 48, this fit 47"):
        _clf(checkpoint=path, max_epochs=2).fit(X[:47], y[:47])
    assert path.read_bytes() == written
    # What does not change the result may change: device, verbosity, n_jobs.
    _clf(checkpoint=path, max_epochs=2, device="cpu", verbose=1, n_jobs=2).fit(X, y)

    path.write_bytes(b"not a checkpoint")
    message = "(?s)cannot be read .* corrupted or not a DejaVidClassifier checkpoint"
    with pytest.raises(ValueError, match=message):
        _clf(checkpoint=path).fit(X, y)


def test_warm_start_does_not_reuse_the_previous_fits_checkpoint(data, tmp_path):
    X, y = data
    path = tmp_path / "run.pt"
    # Every epoch kept (no held-out selection), so that a new run always moves the centroids.
    clf = _clf(checkpoint=path, max_epochs=2, warm_start=True, validation_fraction=None,
               cv=None, calibration=None).fit(X, y)
    first = clf.centroids_.copy()
    # Same parameters, but another starting state: a different run.
    with pytest.raises(ValueError, match="warm_start_state"):
        clf.fit(X, y)
    path.unlink()
    assert not np.array_equal(clf.fit(X, y).centroids_, first)
