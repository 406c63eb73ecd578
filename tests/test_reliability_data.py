"""Reliability of the data the estimators and stores read (issue 21, part 2): numbers out
of float32's range and odd dtypes are errors naming the range or the type and the sample;
a store being replaced by a concurrent writer is never called corrupted.
"""

import numpy as np
import pytest
import torch

import sktdtw.io._format
from sktdtw import DejaVidClassifier
from sktdtw.dtw import weighted_dtw
from sktdtw.io import open_store, write_store

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
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(t), 3)).astype(np.float32) for t in rng.integers(4, 9, 8)]
    y = np.arange(8) % 2
    return DejaVidClassifier(max_epochs=1, centroid_length=3, init="mean", n_prototypes=1,
                             random_state=0).fit(X, y), X, y


def _object_array(items):
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def test_a_string_in_an_object_array_names_its_sample(fitted):
    clf, X, _ = fitted
    bad = X[1].astype(object)
    bad[2, 1] = "a"
    with pytest.raises(ValueError, match=r"sample 1 of X holds 'a' at index \(2, 1\), not a "
                       "real number"):
        clf.predict(_object_array([X[0], bad]))
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
