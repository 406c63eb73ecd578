"""Reliability of the data the estimators and stores read (issue 21, part 2): numbers out
of float32's range and odd dtypes are errors naming the range or the type and the sample;
a store being replaced by a concurrent writer is never called corrupted.
"""

import os

import numpy as np
import pytest
import torch

import sktdtw.io._format
from sktdtw import DejaVidClassifier
from sktdtw.dtw import weighted_dtw
from sktdtw.io import open_store, write_store

from conftest import LazySequence, learnable_ragged, object_array

# ------------------------------------------------------------ item 13: concurrent writers


def _write(path, tag, **options):
    """A store whose ids, lengths and values all say ``tag``."""
    write_store(path, [np.full((3 + tag, 2), tag, np.float32)] * 4,
                ids=[f"{tag}-{i}" for i in range(4)], **options)


@pytest.mark.parametrize("replacements", [1, 3])
def test_an_open_racing_an_overwrite_reads_one_whole_store(tmp_path, monkeypatch,
                                                           replacements):
    """Another writer replaces the store right after this open read meta.json (the race
    that called a healthy store corrupted): the open reads one store, whole."""
    path = tmp_path / "s"
    _write(path, 0)
    read_meta, tags = sktdtw.io._format._read_meta, iter(range(1, replacements + 1))

    def racing(*args):
        meta = read_meta(*args)
        tag = next(tags, None)
        if tag is not None:
            _write(path, tag, overwrite=True)
        return meta

    monkeypatch.setattr(sktdtw.io._format, "_read_meta", racing)
    store = open_store(path)
    tag = int(store.ids[0].split("-")[0])
    assert store.ids.tolist() == [f"{tag}-{i}" for i in range(4)]
    values, lengths = store.read_batch(slice(None))
    assert (lengths == 3 + tag).all() and (values == tag).all()


def test_an_open_that_races_overwrites_forever_says_so(tmp_path, monkeypatch):
    path = tmp_path / "s"
    _write(path, 0)
    read_meta, writing = sktdtw.io._format._read_meta, []

    def racing(*args):
        meta = read_meta(*args)
        if not writing:  # not the open at the end of the racing write itself
            writing.append(True)
            _write(path, 1, overwrite=True)
            writing.clear()
        return meta

    monkeypatch.setattr(sktdtw.io._format, "_read_meta", racing)
    with pytest.raises(ValueError, match="is being replaced by other writers faster than it "
                       "can be opened"):
        open_store(path)


# ------------------------------------------------------------ item 12: odd dtypes


@pytest.fixture(scope="module")
def fitted():
    X, y = learnable_ragged(8), np.arange(8) % 2
    return DejaVidClassifier(max_epochs=1, centroid_length=3, init="mean", n_prototypes=1,
                             random_state=0).fit(X, y), X, y


def test_a_string_in_an_object_array_names_its_sample(fitted):
    clf, X, _ = fitted
    bad = X[1].astype(object)
    bad[2, 1] = "a"
    with pytest.raises(ValueError, match=r"sample 1 of X holds 'a' at index \(2, 1\), not a "
                       "real number"):
        clf.predict(object_array([X[0], bad]))
    whole = np.stack([X[0][:4], X[1][:4]]).astype(object)
    whole[1, 3, 0] = "b"
    with pytest.raises(ValueError, match=r"sample 1 of X holds 'b' at index \(3, 0\)"):
        clf.predict(whole)


def test_bfloat16_tensors_are_converted(fitted, tmp_path):
    clf, X, _ = fitted
    half = [torch.from_numpy(x).to(torch.bfloat16) for x in X]
    exact = [t.float().numpy() for t in half]
    np.testing.assert_array_equal(clf.predict_proba(half), clf.predict_proba(exact))
    store = write_store(tmp_path / "s", half)
    np.testing.assert_array_equal(store[3], exact[3])


def test_meta_tensors_are_refused_naming_the_sample(fitted, tmp_path):
    clf, X, _ = fitted
    meta = [torch.from_numpy(x) for x in X[:2]] + [torch.empty(5, 3, device="meta")]
    with pytest.raises(ValueError, match="sample 2 of X is a tensor on the meta device, which "
                       "holds no values"):
        clf.predict(meta)
    with pytest.raises(ValueError, match="series 2 is a tensor on the meta device"):
        write_store(tmp_path / "s", meta)


@pytest.mark.parametrize("offsets, message", [
    (torch.tensor([0.0, 4.0, 10.0]), "offsets have dtype torch.float32; expected integers"),
    (np.array([0.0, 4.0, 10.0]), "offsets have dtype torch.float64; expected integers"),
    (torch.tensor([[0, 4, 10]]), r"offsets must be a 1-D int64 tensor .* shape \(1, 3\)"),
    ([0, 4, 10], None),
])
def test_bad_offsets_of_a_pair_are_named_as_offsets(offsets, message):
    values, C = torch.rand(10, 3), torch.rand(2, 4, 3)
    if message is None:  # a list of ints is offsets too
        assert weighted_dtw((values, offsets), C, torch.ones_like(C)).shape == (2, 2)
        return
    with pytest.raises(ValueError, match=message):
        weighted_dtw((values, offsets), C, torch.ones_like(C))


# ------------------------------------------------------------ item 11: float32's range


def _two_classes(scale, n=8, dtype=np.float32):
    rng = np.random.default_rng(0)
    X = [(rng.normal(size=(6, 2)) * scale).astype(dtype) for _ in range(n)]
    return X, np.arange(n) % 2


_RANGE = r"float32's range: magnitudes from 1\.18e-38 \(the smallest normal number\) to 3\.4e\+38"


@pytest.mark.parametrize("scale, params", [
    (1e-39, {}),  # default pooled scaling: the weights 1 / std overflowed
    (1e-42, {"feature_scaling": None}),  # no scaling: the training diverged
])
def test_values_below_float32s_normal_range_name_it_and_the_sample(scale, params, tmp_path):
    X, y = _two_classes(scale)
    X = [np.ones((6, 2), np.float32)] + X[1:]
    with pytest.raises(ValueError, match=rf"sample 1 of X has no value larger than \S+ in "
                       rf"magnitude, below {_RANGE}"):
        DejaVidClassifier(max_epochs=2, random_state=0, **params).fit(X, y)
    store = write_store(tmp_path / "s", X, labels=y)  # a store holds them; a fit refuses
    with pytest.raises(ValueError, match=rf"sample [1-7] of X has no value larger .*{_RANGE}"):
        DejaVidClassifier(max_epochs=2, random_state=0, **params).fit(store, y)


def test_float64_values_beyond_float32_name_the_range_and_the_sample(fitted):
    clf, X, _ = fitted
    big = X[2].astype(np.float64)
    big[3, 1] = 1e39
    for data in (X[:2] + [big], LazySequence(X[:2] + [big])):
        with pytest.raises(ValueError, match=rf"sample 2 of X has the value 1e\+39 at time step "
                           rf"3, beyond {_RANGE}, in which the estimators compute"):
            clf.predict(data)


@pytest.mark.parametrize("feature_scaling, exponents", [
    ("pooled", [124] * 3),  # 2e37: the weight gradient overflowed, "training diverged"
    ("pooled", [-110] * 3),
    ("standard", [124, -3, 0]),  # one feature near float32's top, the others ordinary
])
def test_data_in_other_units_fit_to_the_same_model_near_float32s_ends(feature_scaling,
                                                                      exponents):
    """Issue 19, item 6: with feature scaling, data multiplied by a power of two per feature
    give the model of the data themselves in those units, bit for bit (every step of the
    fit is equivariant under such a scaling, which floating point makes exactly), also
    where the data's magnitude nears float32's ends."""
    X = learnable_ragged(24)
    y = np.arange(24) % 2
    factors = np.ldexp(np.float32(1), exponents).astype(np.float32)
    params = {"feature_scaling": feature_scaling, "max_epochs": 4, "random_state": 0}
    plain = DejaVidClassifier(**params).fit(X, y)
    scaled = DejaVidClassifier(**params).fit([x * factors for x in X], y)
    assert plain.n_epochs_ > 0  # the trained model was kept, not the initial centroids
    np.testing.assert_array_equal(scaled.centroids_, plain.centroids_ * factors)
    np.testing.assert_array_equal(scaled.weights_, plain.weights_ / factors)
    np.testing.assert_array_equal(
        scaled.predict_proba([x * factors for x in X]), plain.predict_proba(X)
    )


def test_the_values_memmap_names_its_file(tmp_path):
    """joblib sends a view of a memmap to a worker process by its file's path."""
    _write(tmp_path / "s", 1)
    store = open_store(tmp_path / "s")
    assert store._files.values.filename == os.path.join(str(tmp_path / "s"), "values.npy")
