"""Training and inference on lazy sequences (data read on demand, never loaded whole)."""

import weakref
from collections.abc import Sequence

import numpy as np
import pytest

import sktdtw._inference as inference_module
from sktdtw import DBAInitializer, DejaVidClassifier
from sktdtw._source import LazySource, as_source
from sktdtw.datasets import make_temporal_order

from conftest import LazySequence, assert_same_fit


class CountingStore(Sequence):
    """A lazy sequence of series in a memory-mapped file, instrumented.

    Records every sample index read (``reads``), the elements read in all
    (``elements_read``), and the most elements handed out and still alive at once
    (``peak_live``), tracked with weak references to the returned arrays.
    ``read_batch`` / ``lengths`` are offered only when asked, like the two kinds of
    store the classifier must handle.
    """

    def __init__(self, series, path, *, batch_reads=False, lengths=False):
        values = np.concatenate(series).astype(np.float32)
        self._values = np.memmap(path, dtype=np.float32, mode="w+", shape=values.shape)
        self._values[:] = values
        self._offsets = np.concatenate([[0], np.cumsum([len(x) for x in series])])
        if batch_reads:
            self.read_batch = self._read_batch
        if lengths:
            self.lengths = np.diff(self._offsets).astype(np.int64)
        self.reads = []
        self.elements_read = 0
        self.live = 0
        self.peak_live = 0

    def __len__(self):
        return len(self._offsets) - 1

    def _hand_out(self, arr, indices):
        self.reads.extend(int(i) for i in indices)
        self.elements_read += arr.size
        self.live += arr.size
        self.peak_live = max(self.peak_live, self.live)
        weakref.finalize(arr, self._release, arr.size)
        return arr

    def _release(self, size):
        self.live -= size

    def __getitem__(self, i):
        if not isinstance(i, (int, np.integer)):
            raise TypeError("CountingStore takes one integer index")
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return self._hand_out(np.array(self._values[self._offsets[i]:self._offsets[i + 1]]), [i])

    def _read_batch(self, indices):
        parts = [self._values[self._offsets[i]:self._offsets[i + 1]] for i in indices]
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        return self._hand_out(np.concatenate(parts), indices), lengths


@pytest.fixture(scope="module")
def data():
    return make_temporal_order(
        n_samples=60, n_classes=3, n_features=3, n_events=3, min_length=6, max_length=20,
        random_state=0,
    )


def _clf(**params):
    defaults = dict(
        centroid_length=4, max_epochs=3, batch_size=8, dba_max_iter=3, random_state=0,
        cv=None, calibration=None, n_prototypes=1,
    )
    return DejaVidClassifier(**{**defaults, **params})


@pytest.mark.parametrize("batch_reads", [False, True], ids=["getitem", "read_batch"])
@pytest.mark.parametrize(
    "params",
    [{}, {"validation_fraction": 0.25}, {"init": "medoid", "path_update": "batch"}],
    ids=["dba", "validation", "medoid-batch"],
)
def test_lazy_fit_equals_list_fit_bit_for_bit(data, tmp_path, batch_reads, params):
    X, y = data
    store = CountingStore(X, tmp_path / "v.f32", batch_reads=batch_reads, lengths=batch_reads)
    lazy = _clf(**params).fit(store, y)
    eager = _clf(**params).fit(X, y)
    assert_same_fit(lazy, eager)
    np.testing.assert_array_equal(lazy.transform(store), eager.transform(X))
    np.testing.assert_array_equal(lazy.predict_proba(store), eager.predict_proba(X))
    assert lazy.score(store, y) == eager.score(X, y)


def test_mean_init_streams_the_training_set(data, tmp_path):
    X, y = data
    store = CountingStore(X, tmp_path / "v.f32")
    lazy = _clf(init="mean", max_epochs=0).fit(store, y)
    eager = _clf(init="mean", max_epochs=0).fit(X, y)
    # A running sum instead of NumPy's pairwise mean: equal up to rounding.
    np.testing.assert_allclose(lazy.centroids_, eager.centroids_, rtol=1e-6)


def test_each_training_sample_is_read_once_per_epoch(data, tmp_path):
    X, y = data
    store = CountingStore(X, tmp_path / "v.f32")
    n_epochs = 3
    init = np.zeros((3, 4, 3))  # no DBA: every read below is metadata or training
    _clf(init=init, max_epochs=n_epochs).fit(store, y)
    total = sum(x.size for x in X)
    # Sample 0 once for the feature count; one pass in order for the features' scales,
    # one for the initial scores; then each epoch reads every sample once; then one pass
    # for the final scores.
    n = len(X)
    assert store.reads[0] == 0
    passes = np.array(store.reads[1:]).reshape(n_epochs + 3, n)
    for in_order in passes[[0, 1, -1]]:
        np.testing.assert_array_equal(in_order, np.arange(n))
    for order in passes[2:-1]:
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert store.elements_read == X[0].size + (n_epochs + 3) * total
    print(f"elements read per epoch: {(store.elements_read - X[0].size) // (n_epochs + 3)} "
          f"(= all training elements, {total})")


def test_validation_split_reads_by_index(data, tmp_path):
    X, y = data
    store = CountingStore(X, tmp_path / "v.f32")
    clf = _clf(init=np.zeros((3, 4, 3)), max_epochs=2, validation_fraction=0.25).fit(store, y)
    counts = np.bincount(store.reads[1:], minlength=len(X))
    # Training samples are read for the features' scales, the initial scores and once per
    # epoch (4 reads); validation samples at each candidate epoch count, 0, 1 and 2 (3).
    held_out = counts == 3
    assert held_out.sum() == 15
    np.testing.assert_array_equal(counts[~held_out], 4)
    np.testing.assert_array_equal(clf.cv_results_["n_epochs"], [0, 1, 2])


def test_dba_reads_only_its_samples(data, tmp_path):
    X, y = data
    store = CountingStore(X, tmp_path / "v.f32")
    lazy = DBAInitializer(centroid_length=4, n_samples=5, max_iter=3, random_state=0).fit(store, y)
    eager = DBAInitializer(centroid_length=4, n_samples=5, max_iter=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(lazy.centroids_, eager.centroids_)
    # Sample 0 for the feature count, then 5 series of each of the 3 classes.
    assert len(store.reads) == 1 + 3 * 5
    assert len(set(store.reads[1:])) == 15
    for k in range(3):
        assert sum(y[i] == k for i in store.reads[1:]) == 5


def test_classifier_dba_reads_only_dba_samples_before_training(data, tmp_path):
    X, y = data
    store = CountingStore(X, tmp_path / "v.f32")
    _clf(max_epochs=1, dba_samples=4).fit(store, y)
    # Sample 0 once (the metadata, checked once at the boundary), 4 per class for DBA,
    # then passes for the features' scales, the initial scores, one epoch and the final
    # scores.
    assert len(store.reads) == 1 + 3 * 4 + 4 * len(X)


@pytest.mark.parametrize("batch_reads", [False, True], ids=["getitem", "read_batch"])
def test_memory_is_bounded_by_the_batch(data, tmp_path, monkeypatch, batch_reads):
    X, y = data
    store = CountingStore(X, tmp_path / "v.f32", batch_reads=batch_reads)
    longest = max(x.size for x in X)
    _clf(batch_size=8, dba_samples=4).fit(store, y)
    # Training holds one batch, DBA one class's samples: never the 60 series.
    training_peak = store.peak_live
    assert training_peak <= 8 * longest
    store.peak_live = 0
    monkeypatch.setattr(inference_module, "INFERENCE_CHUNK", 10)
    _clf(batch_size=8).fit(X, y).predict(store)
    assert store.peak_live <= 10 * longest
    print(f"peak elements held: training {training_peak} (batch x longest = {8 * longest}), "
          f"inference {store.peak_live} (chunk x longest = {10 * longest}), "
          f"whole set {sum(x.size for x in X)}")


@pytest.mark.parametrize("batch_reads", [False, True], ids=["getitem", "read_batch"])
def test_errors_name_the_global_sample(data, tmp_path, batch_reads):
    X, y = data
    X = [x.copy() for x in X]
    X[37][2, 1] = np.nan
    store = CountingStore(X, tmp_path / "v.f32", batch_reads=batch_reads)
    with pytest.raises(ValueError, match="sample 37 of X contains non-finite values .* step 2"):
        _clf(init=np.zeros((3, 4, 3)), validation_fraction=0.25).fit(store, y)
    with pytest.raises(ValueError, match="sample 37 of X contains non-finite"):
        _clf().fit(data[0], y).predict(store)



def test_feature_count_errors_name_the_global_sample(data):
    X, y = data
    X = list(X)
    X[5] = X[5][:, :2]
    store = LazySequence(X)
    # Reading a subset of the training samples still names sample 5 of the whole set.
    with pytest.raises(ValueError, match="sample 5 of X has 2 features but sample 0 has 3"):
        LazySource(store, 3, index=np.arange(3, 10)).read([0, 1, 2])
    with pytest.raises(ValueError, match="sample 5 of X has 2 features but sample 0 has 3"):
        _clf(init=np.zeros((3, 4, 3))).fit(store, y)
    with pytest.raises(ValueError, match="sample 5 of X has 2 features, but the estimator"):
        _clf().fit(data[0], y).transform(store)


def test_metadata_errors(data, tmp_path):
    X, y = data
    store = CountingStore(X, tmp_path / "v.f32", lengths=True)
    with pytest.raises(ValueError, match="X has 60 series but y has 59 labels"):
        _clf().fit(store, y[:59])
    store.lengths = store.lengths.copy()
    store.lengths[7] = 0
    with pytest.raises(ValueError, match="sample 7 of X is empty"):
        _clf().fit(store, y)
    store.lengths = store.lengths[:10]
    with pytest.raises(ValueError, match=r"X.lengths has shape \(10,\)"):
        _clf().fit(store, y)
    with pytest.raises(ValueError, match="sample 0 of X has 3 features, but the estimator"):
        _clf().fit([x[:, :2] for x in X], y).predict(store)


def test_subsets_of_in_memory_series_are_views(data):
    # The training split and the cross-fits' folds read from the one packed copy of X.
    X, _ = data
    source = as_source(X)
    part = source.subset([5, 2, 2]).subset([0, 2])
    assert part.values.data_ptr() == source.values.data_ptr()
    np.testing.assert_array_equal(part.lengths, [len(X[5]), len(X[2])])
    expected = np.concatenate([X[5], X[2]]).astype(np.float32)
    np.testing.assert_array_equal(part.read([0, 1]).values.numpy(), expected)
