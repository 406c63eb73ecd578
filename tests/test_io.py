"""sktdtw.io: writing, opening, subsetting and building on-disk TSE stores."""

import hashlib
import json
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from sktdtw.io import TSEStore, build_store, open_store, write_store


def _ragged(n=7, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(t), n_features)).astype(np.float32)
            for t in rng.integers(1, 12, size=n)]


@pytest.fixture
def series():
    return _ragged()


@pytest.fixture
def store(tmp_path, series):
    n = len(series)
    return write_store(
        tmp_path / "store", iter(series), labels=[f"c{i % 3}" for i in range(n)],
        ids=[f"vid{i}" for i in range(n)], splits=["train", "test"] * (n // 2) + ["train"],
    )


@pytest.mark.parametrize("labels", [["a", "b", "a", "c", "b", "a", "c"], [3, 1, 3, 0, 1, 3, 0]])
def test_round_trip(tmp_path, series, labels):
    ids = [f"x{i}" for i in range(len(series))]
    splits = ["train"] * 5 + ["test"] * 2
    # A generator: write_store must stream, not ask for a length.
    write_store(tmp_path / "s", (x for x in series), labels=labels, ids=ids, splits=splits)
    store = open_store(tmp_path / "s")
    assert isinstance(store, TSEStore) and len(store) == len(series)
    assert store.n_features == 3
    for got, want in zip(store, series):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    assert store.labels.tolist() == labels
    assert store.ids.tolist() == ids
    assert store.splits.tolist() == splits
    assert store.lengths.dtype == np.int64 and store.lengths.tolist() == [len(x) for x in series]
    assert store.offsets.tolist() == np.concatenate([[0], np.cumsum(store.lengths)]).tolist()
    assert store.path == str(tmp_path / "s")
    np.testing.assert_array_equal(store[-1], series[-1])


def test_defaults_and_inputs(tmp_path):
    # Default ids, no labels nor splits; tensors and float64/int inputs are stored as float32.
    data = [torch.arange(6.0).reshape(3, 2), np.ones((2, 2), dtype=np.float64),
            np.zeros((1, 2), dtype=np.int32)]
    store = write_store(tmp_path / "s", data)
    assert store.ids.tolist() == ["0", "1", "2"]
    assert store.labels is None and store.splits is None
    np.testing.assert_array_equal(store[0], np.arange(6.0).reshape(3, 2))
    assert store[2].dtype == np.float32


def test_lazy_memory_map(store, series):
    # Opening reads no series: the values stay a read-only memory map, and a sample is a
    # view into it, not a copy.
    values = store._files.values
    assert isinstance(values, np.memmap) and values.mode == "r"
    sample = store[2]
    assert np.shares_memory(sample, values)
    assert not sample.flags.writeable
    assert isinstance(store, Sequence)


def test_open_reads_only_headers(tmp_path, monkeypatch):
    # Open a store whose values are far larger than anything that may be read, and check
    # that np.load is never asked for values.npy.
    write_store(tmp_path / "s", (np.ones((1000, 256), np.float32) for _ in range(20)))
    loads = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda file, *a, **k: loads.append(str(file)) or
                        real_load(file, *a, **k))
    store = open_store(tmp_path / "s")
    assert not any(name.endswith("values.npy") for name in loads)
    assert store.lengths.sum() == 20_000


def test_subset_split_and_read_batch(store, series):
    sub = store.subset([5, 1, 2])
    assert len(sub) == 3 and sub.ids.tolist() == ["vid5", "vid1", "vid2"]
    assert sub.labels.tolist() == ["c2", "c1", "c2"]
    assert sub.lengths.tolist() == [len(series[i]) for i in (5, 1, 2)]
    assert sub.offsets.tolist() == [0] + np.cumsum(sub.lengths).tolist()
    np.testing.assert_array_equal(sub[0], series[5])
    # A view of a view, slices, masks and negative indices.
    np.testing.assert_array_equal(sub[1:][-1], series[2])
    assert store[::3].ids.tolist() == ["vid0", "vid3", "vid6"]
    assert store[np.arange(7) % 2 == 1].ids.tolist() == ["vid1", "vid3", "vid5"]
    assert store.subset([-1]).ids.tolist() == ["vid6"]
    assert len(store.subset([])) == 0

    train = store.split("train")
    assert train.ids.tolist() == ["vid0", "vid2", "vid4", "vid6"]
    assert set(train.splits) == {"train"}

    values, lengths = train.read_batch([3, 0])
    assert values.dtype == np.float32 and values.flags.writeable and values.flags.c_contiguous
    assert lengths.dtype == np.int64 and lengths.tolist() == [len(series[6]), len(series[0])]
    np.testing.assert_array_equal(values, np.concatenate([series[6], series[0]]))
    everything, _ = store.read_batch(slice(None))
    np.testing.assert_array_equal(everything, np.concatenate(series))


def test_index_errors(store):
    with pytest.raises(IndexError, match="out of range"):
        store[7]
    with pytest.raises(IndexError, match="out of range"):
        store.subset([0, 9])
    with pytest.raises(IndexError, match="boolean mask"):
        store[np.ones(3, dtype=bool)]
    with pytest.raises(IndexError, match="indexed by"):
        store[np.zeros((2, 2), dtype=int)]
    with pytest.raises(ValueError, match="no sample in split 'val'; its splits are 'test', "
                                         "'train'"):
        store.split("val")
    unsplit = write_store(store.path + "2", [np.ones((1, 1))])
    with pytest.raises(ValueError, match="has no splits"):
        unsplit.split("train")


def test_pickle_subset_ships_path_not_data(tmp_path):
    big = write_store(tmp_path / "s", (np.full((500, 64), i, np.float32) for i in range(40)),
                      labels=np.arange(40) % 2)
    sub = big.subset([30, 3, 12])
    payload = pickle.dumps(sub)
    assert len(payload) < 2_000  # the values of the three samples alone are 384 kB
    back = pickle.loads(payload)
    assert back.ids.tolist() == ["30", "3", "12"] and back.labels.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(back[1], np.full((500, 64), 3, np.float32))
    assert isinstance(back._files.values, np.memmap)


def test_interrupted_write_leaves_nothing(tmp_path, series):
    def interrupted():
        yield from series[:3]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_store(tmp_path / "s", interrupted(), labels=[0] * 7)
    assert os.listdir(tmp_path) == []

    # A failure after the values (labels of the wrong length for a generator) cleans up too.
    with pytest.raises(ValueError, match="labels has 2 entries but there are 7 series"):
        write_store(tmp_path / "s", iter(series), labels=[0, 1])
    assert os.listdir(tmp_path) == []


def test_overwrite(tmp_path, series):
    write_store(tmp_path / "s", series[:2])
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        write_store(tmp_path / "s", series)
    assert len(open_store(tmp_path / "s")) == 2
    assert len(write_store(tmp_path / "s", series, overwrite=True)) == 7
    assert sorted(os.listdir(tmp_path)) == ["s"]
    (tmp_path / "not_a_store").mkdir()
    with pytest.raises(FileExistsError, match="is not a TSE store"):
        write_store(tmp_path / "not_a_store", series, overwrite=True)


@pytest.mark.parametrize("bad, message", [
    ([np.ones((2, 3)), np.ones((2, 4))], "series 1 has 4 features; series 0 has 3"),
    ([np.ones((2, 3)), np.ones((0, 3))], "series 1 has shape \\(0, 3\\)"),
    ([np.ones((2, 3, 1))], "series 0 has shape \\(2, 3, 1\\); expected \\(T, n_features\\)"),
    ([np.ones((2, 3)), np.array([[1.0, np.nan, 0.0]])], "series 1 has a non-finite value at "
                                                        "time step 0, feature 1"),
    ([np.ones((2, 3)), np.array([[1e300, 0.0, 0.0]])], "series 1 has a non-finite value"),
    ([], "no series to write"),
])
def test_write_rejects_bad_series(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        write_store(tmp_path / "s", bad)
    assert os.listdir(tmp_path) == []


def test_write_rejects_bad_per_sample_arrays(tmp_path, series):
    with pytest.raises(ValueError, match="id 'a' is used by series \\[0, 2\\]"):
        write_store(tmp_path / "s", series[:3], ids=["a", "b", "a"])
    with pytest.raises(ValueError, match="labels has 1 entries but there are 7 series"):
        write_store(tmp_path / "s", series, labels=["a"])
    with pytest.raises(ValueError, match="labels has dtype object"):
        write_store(tmp_path / "s", series[:2], labels=np.array([None, "a"]))
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------- corruption


def _fresh(tmp_path, series):
    return write_store(tmp_path / "s", series, labels=[0] * len(series)).path


def _replace(path, name, array):
    """Save ``array`` as a file of the store and update its digest in meta.json, as a store
    written by another tool could hold: only the structural checks can catch it."""
    file = os.path.join(path, name)
    np.save(file, array)
    meta_file = os.path.join(path, "meta.json")
    meta = json.loads(Path(meta_file).read_text())
    meta["digests"][name] = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    Path(meta_file).write_text(json.dumps(meta))


def test_corrupt_truncated_values(tmp_path, series):
    path = _fresh(tmp_path, series)
    file = os.path.join(path, "values.npy")
    os.truncate(file, os.path.getsize(file) - 4)
    with pytest.raises(ValueError, match=r"values.npy is truncated: \d+ rows of 3 float32 need"):
        open_store(path)


def test_corrupt_offsets(tmp_path, series):
    path = _fresh(tmp_path, series)
    file = os.path.join(path, "offsets.npy")
    good = np.load(file)
    cases = [
        (good + 1, "offsets.npy starts at 1, not 0"),
        (np.concatenate([good[:2], good[1:2], good[3:]]), "offsets.npy is not strictly "
                                                          "increasing: entry 2"),
        (np.concatenate([good[:-1], good[-1:] + 5]), "offsets.npy ends at .* but values.npy has"),
        (good[:-1], r"offsets.npy has shape \(7,\); meta.json says 8 samples"),
    ]
    for offsets, message in cases:
        _replace(path, "offsets.npy", offsets)
        with pytest.raises(ValueError, match=message):
            open_store(path)


def test_corrupt_missing_and_mismatched_files(tmp_path, series):
    path = _fresh(tmp_path, series)
    ids = np.load(os.path.join(path, "ids.npy"))
    _replace(path, "ids.npy", ids[:2])
    with pytest.raises(ValueError, match=r"ids.npy has shape \(2,\); meta.json says 7 samples"):
        open_store(path)
    _replace(path, "ids.npy", ids)
    os.remove(os.path.join(path, "labels.npy"))
    with pytest.raises(ValueError, match=f"TSE store {path}: labels.npy is missing"):
        open_store(path)
    os.remove(os.path.join(path, "values.npy"))
    with pytest.raises(ValueError, match="values.npy is missing"):
        open_store(path)
    os.remove(os.path.join(path, "meta.json"))
    with pytest.raises(ValueError, match="meta.json is missing: this is not a TSE store"):
        open_store(path)
    with pytest.raises(FileNotFoundError, match="no TSE store at"):
        open_store(tmp_path / "nowhere")


def test_corrupt_format_version(tmp_path, series):
    path = _fresh(tmp_path, series)
    file = Path(path, "meta.json")
    meta = json.loads(file.read_text())
    meta["format_version"] = 99
    file.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="meta.json has format version 99; this version of "
                                         "sktdtw reads versions 1, 2"):
        open_store(path)
    file.write_text("{not json")
    with pytest.raises(ValueError, match="meta.json is unreadable"):
        open_store(path)


# ----------------------------------------------------------------------- build_store


def _write_manifest(folder, rows, header="id,path,label,split"):
    text = header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows)
    (folder / "manifest.csv").write_text(text)
    return folder / "manifest.csv"


@pytest.fixture
def files(tmp_path, series):
    """The series saved as alternating .npy and .pt files under tmp_path/feats."""
    (tmp_path / "feats").mkdir()
    rows = []
    for i, x in enumerate(series):
        name = f"feats/v{i}.npy" if i % 2 == 0 else f"feats/v{i}.pt"
        if name.endswith(".npy"):
            np.save(tmp_path / name, x.astype(np.float64))
        else:
            torch.save(torch.from_numpy(x), tmp_path / name)
        rows.append([f"v{i}", name, i % 3, "train" if i < 5 else "test"])
    return rows


def test_build_store(tmp_path, series, files):
    manifest = _write_manifest(tmp_path, files)
    store = build_store(manifest, tmp_path / "store", verbose=1)
    assert store.ids.tolist() == [f"v{i}" for i in range(7)]
    assert store.labels.dtype == np.int64 and store.labels.tolist() == [i % 3 for i in range(7)]
    assert store.split("test").ids.tolist() == ["v5", "v6"]
    for got, want in zip(store, series):
        np.testing.assert_array_equal(got, want)

    # Relative to root instead of the manifest's folder; string labels; no split column.
    (tmp_path / "elsewhere").mkdir()
    rows = [[r[0], r[1], f"class {r[2]}"] for r in files]
    manifest = _write_manifest(tmp_path / "elsewhere", rows, header="id,path,label")
    store = build_store(manifest, tmp_path / "store2", root=tmp_path)
    assert store.labels.tolist()[:2] == ["class 0", "class 1"] and store.splits is None


@pytest.mark.parametrize("change, message", [
    (lambda d, rows: rows[2].__setitem__(1, "feats/gone.npy"),
     "row 3 \\(id 'v2'\\): file .*gone.npy does not exist"),
    (lambda d, rows: (d / "feats/v3.pt").write_bytes(b"not a tensor"),
     "row 4 \\(id 'v3'\\): file .*v3.pt cannot be read by torch.load"),
    (lambda d, rows: (d / "feats/v2.npy").write_bytes(b"\x93NUMPY garbage"),
     "row 3 \\(id 'v2'\\): file .*v2.npy cannot be read"),
    (lambda d, rows: np.save(d / "feats/v4.npy", np.ones((3, 3, 1))),
     "row 5 \\(id 'v4'\\): file .* holds an array of shape \\(3, 3, 1\\)"),
    (lambda d, rows: torch.save(torch.ones(4, 5), d / "feats/v1.pt"),
     "row 2 \\(id 'v1'\\): file .* has 5 features; the first row's file has 3"),
    (lambda d, rows: np.save(d / "feats/v6.npy", np.ones((0, 3))),
     "row 7 \\(id 'v6'\\): file .* holds an empty series"),
    (lambda d, rows: np.save(d / "feats/v0.npy", np.array([[0.0, np.inf, 0.0]])),
     "row 1 \\(id 'v0'\\): file .* has a non-finite value at time step 0, feature 1"),
    (lambda d, rows: rows[4].__setitem__(0, "v1"),
     "row 5 \\(id 'v1'\\): duplicate id, already used in row 2"),
    (lambda d, rows: torch.save({"x": torch.ones(2, 3)}, d / "feats/v5.pt"),
     "row 6 \\(id 'v5'\\): file .* holds a dict, not a tensor"),
    (lambda d, rows: (rows[1].__setitem__(1, "v1.csv"), (d / "v1.csv").write_text("1,2")),
     "row 2 \\(id 'v1'\\): file .* is neither a .npy nor a .pt file"),
    (lambda d, rows: rows[0].__setitem__(2, ""), "row 1 \\(id 'v0'\\): the label cell is empty"),
])
def test_build_store_names_the_bad_row(tmp_path, files, change, message):
    change(tmp_path, files)
    manifest = _write_manifest(tmp_path, files)
    with pytest.raises(ValueError, match=message):
        build_store(manifest, tmp_path / "store")
    assert not any(name.startswith((".store", "store")) for name in os.listdir(tmp_path))


def test_build_store_manifest_errors(tmp_path, files):
    manifest = _write_manifest(tmp_path, [row[1:3] for row in files], header="path,label")
    with pytest.raises(ValueError, match="lacks the required column\\(s\\) id; its header "
                                         "is path,label"):
        build_store(manifest, tmp_path / "store")
    manifest = _write_manifest(tmp_path, [])
    with pytest.raises(ValueError, match="has no data rows"):
        build_store(manifest, tmp_path / "store")
    manifest = _write_manifest(tmp_path, files)
    build_store(manifest, tmp_path / "store")
    with pytest.raises(FileExistsError):
        build_store(manifest, tmp_path / "store")
    assert len(build_store(manifest, tmp_path / "store", overwrite=True)) == len(files)


def test_build_store_without_labels(tmp_path, series, files):
    """Data to predict: a manifest without a label column gives an unlabelled store."""
    manifest = _write_manifest(tmp_path, [row[:2] for row in files], header="id,path")
    store = build_store(manifest, tmp_path / "store")
    assert store.labels is None and store.splits is None
    for got, want in zip(store, series):
        np.testing.assert_array_equal(got, want)


def test_build_store_keeps_distinct_label_spellings(tmp_path, files):
    """"1", "01" and "+1" are three labels, not one class; canonical integers stay ints."""
    rows = [row[:2] + [label] for row, label in zip(files, ["1", "01", "+1", "1", "2", "01", "-3"])]
    store = build_store(_write_manifest(tmp_path, rows, header="id,path,label"), tmp_path / "s")
    assert store.labels.tolist() == ["1", "01", "+1", "1", "2", "01", "-3"]
    assert len(np.unique(store.labels)) == 5
    rows = [row[:2] + [label] for row, label in zip(files, ["1", "0", "-3", "1", "2", "0", "7"])]
    store = build_store(_write_manifest(tmp_path, rows, header="id,path,label"), tmp_path / "t")
    assert store.labels.dtype == np.int64 and store.labels.tolist() == [1, 0, -3, 1, 2, 0, 7]
