"""Reliability of data handling (issue 21): manifests parsed strictly, stores that travel
to workers, what the op's check_input=False skips, and the op's workspace. Each test
reproduces a silent wrong result (or an unstated cost) it guards against."""

import json
import pickle

import numpy as np
import pytest
import torch

from sktdtw.dtw import (
    PackedBatch,
    get_num_threads,
    set_num_threads,
    weighted_dtw,
    weighted_dtw_path,
)
from sktdtw.dtw._backends._cpu import CPUBackend
from sktdtw.io import build_store, open_store, write_store
from sktdtw.video._store import _read_video_manifest

from conftest import ROOT

# ------------------------------------------------------------ manifests (item 4)


@pytest.fixture
def feature_folder(tmp_path):
    (tmp_path / "feat").mkdir()
    for name in ("s0", "s1", "s2"):
        np.save(tmp_path / "feat" / f"{name}.npy", np.ones((3, 2), dtype=np.float32))
    return tmp_path


def _manifest(folder, text):
    path = folder / "manifest.csv"
    path.write_text(text)
    return path


_LOOSE = {
    # An open quote swallowed every later row: "1 series", label 'unterminated\nb,...'.
    "unterminated quote": (
        'id,path,label\na,feat/s0.npy,"unterminated\nb,feat/s1.npy,y\n',
        r"line 2: a quote opened on this line is never closed, swallowing the lines after",
    ),
    "quote closed lines later": (
        'id,path,label\na,feat/s0.npy,"x\nb,feat/s1.npy,y"\nc,feat/s2.npy,z\n',
        r"line 2: a quote opened on this line is closed only on line 3",
    ),
    "unterminated quote on the last line": (
        'id,path,label\na,feat/s0.npy,x\nb,feat/s1.npy,"y',
        r"line 3 is not valid CSV \(unexpected end of data\)",
    ),
    "quote closed mid-cell": (
        'id,path,label\na,feat/s0.npy,"x"y\n',
        r"line 2 is not valid CSV",
    ),
    # A repeated column silently took the last value.
    "repeated header column": (
        "id,path,label,label\na,feat/s0.npy,x,y\n",
        r"line 1: the header names the column\(s\) label more than once",
    ),
    # Extra cells were dropped.
    "extra cells": (
        "id,path,label\na,feat/s0.npy,x\n\nb,feat/s1.npy,y,z,w\n",
        r"line 4, row 2 \(id 'b'\): the row has 5 cells but the header names 3 columns",
    ),
}


@pytest.mark.parametrize("case", _LOOSE)
def test_loosely_formed_manifest_is_refused_naming_the_line(feature_folder, case):
    """Issue 21, item 4: each of these was read as some other data, without a word."""
    text, message = _LOOSE[case]
    manifest = _manifest(feature_folder, text)
    with pytest.raises(ValueError, match=message):
        build_store(manifest, feature_folder / "store")
    # Video manifests are read by the same rules.
    with pytest.raises(ValueError, match=message):
        _read_video_manifest(str(manifest))


def test_row_errors_name_the_line(feature_folder):
    """Blank lines and rows of empty cells are skipped, and later errors still name the
    right line of the file."""
    manifest = _manifest(feature_folder, "id,path,label\n\na,feat/s0.npy,x\n,,\nb,gone.npy,y\n")
    with pytest.raises(ValueError, match=r"line 5, row 2 \(id 'b'\): file .*gone.npy does not"):
        build_store(manifest, feature_folder / "store")


def test_well_formed_quotes_and_short_rows_are_read(feature_folder):
    manifest = _manifest(
        feature_folder,
        'id,path,label,notes\n"a,1",feat/s0.npy,"x ""y"""\nb,feat/s1.npy,z\n',
    )
    store = build_store(manifest, feature_folder / "store")
    assert store.ids.tolist() == ["a,1", "b"]
    assert store.labels.tolist() == ['x "y"', "z"]


# ------------------------------------------------------------ pickled stores (item 5)


def _series(value, n=4):
    return [np.full((3 + i, 2), value + i, dtype=np.float32) for i in range(n)]


def test_pickled_store_refuses_a_store_that_replaced_it(tmp_path):
    """Issue 21, item 5: a pickled store reopened whatever was at its path, so after an
    overwrite a joblib worker read the new values while the parent read the old ones."""
    path = tmp_path / "store"
    store = write_store(path, _series(0.0), labels=[0, 1, 0, 1])
    view = store.subset([2, 0])
    shipped = pickle.dumps(view)
    np.testing.assert_array_equal(pickle.loads(shipped)[0], view[0])  # unchanged: fine
    write_store(path, _series(5.0), labels=[0, 1, 0, 1], overwrite=True)  # same shape
    with pytest.raises(ValueError, match=f"TSE store {path} was replaced after this "
                                         "TSEStore was pickled"):
        pickle.loads(shipped)
    np.testing.assert_array_equal(view[0], _series(0.0)[2])  # the parent's, as opened


def test_pickled_version_1_store_is_identified_by_its_meta(tmp_path):
    path = tmp_path / "store"
    write_store(path, _series(0.0))
    meta = json.loads((path / "meta.json").read_text())
    del meta["digests"]
    meta["format_version"] = 1
    (path / "meta.json").write_text(json.dumps(meta))
    shipped = pickle.dumps(open_store(path))
    assert len(pickle.loads(shipped)) == 4
    meta["n_samples_note"] = "edited"
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="was replaced after this TSEStore was pickled"):
        pickle.loads(shipped)


# ------------------------------------------------------------ the op's check_input (item 6)


def _op_inputs():
    g = torch.Generator().manual_seed(0)
    values = torch.rand(10, 3, generator=g)
    C = torch.rand(2, 4, 3, generator=g)
    W = torch.rand(2, 4, 3, generator=g) + 0.5
    return PackedBatch(values, torch.tensor([0, 4, 10])), C, W


_BAD_PARAMETERS = {
    # Each was accepted with check_input=False: negative or zero distances, NaN paths.
    "negative weights": (lambda C, W: {"weights": -W}, "weights must be strictly positive"),
    "zero weights": (lambda C, W: {"weights": 0 * W}, "weights must be strictly positive"),
    "inf centroids": (lambda C, W: {"centroids": C / 0}, "centroids contain non-finite"),
    "NaN path_centroids": (
        lambda C, W: {"path_centroids": C * np.nan, "path_weights": W},
        "path_centroids contain non-finite values",
    ),
    "negative path_weights": (
        lambda C, W: {"path_centroids": C, "path_weights": -W},
        "path_weights must be strictly positive",
    ),
}


@pytest.mark.parametrize("case", _BAD_PARAMETERS)
@pytest.mark.parametrize("op", [weighted_dtw, weighted_dtw_path])
def test_check_input_false_still_checks_the_parameters(case, op):
    """Issue 21, item 6: check_input=False skipped the parameters' O(K L F) scans too."""
    batch, C, W = _op_inputs()
    change, message = _BAD_PARAMETERS[case]
    arguments = {"centroids": C, "weights": W, **change(C, W)}
    with pytest.raises(ValueError, match=message):
        op(batch, check_input=False, **arguments)


def test_check_input_false_names_a_non_finite_sample_behind_a_non_finite_distance():
    """Skipping the batch's scan, a NaN that reaches a distance is still named, not called
    an overflow of float32."""
    batch, C, W = _op_inputs()
    batch.values[5:] = np.nan
    with pytest.raises(ValueError, match="sample 1 contains non-finite values"):
        weighted_dtw(batch, C, W, check_input=False)


# ------------------------------------------------------------ the op's workspace (item 20)

_WORKSPACE_FORMULA = "min(K * L * N, max(2**20, min(K, 4 * threads) * L * T_max))"


@pytest.mark.parametrize("threads", [1, 2])
def test_cpu_workspace_follows_the_documented_formula(monkeypatch, threads):
    """Issue 21, item 20: the workspace grows with the thread count (4 L T elements per
    thread for a long series), which nothing stated. The allocation is the documented
    formula; the docstring and the README state it."""
    if not CPUBackend.is_available():
        pytest.skip("the compiled CPU backend is not built")
    sizes = []
    run = CPUBackend._run.__func__

    def recording(cls, primitive, *args):
        if primitive == "path":
            sizes.append(args[3])  # (batch, diagonal, workspace, its size, dist, path)
        return run(cls, primitive, *args)

    monkeypatch.setattr(CPUBackend, "_run", classmethod(recording))
    K, L, T = 51, 8, 40000
    C, W = torch.ones(K, L, 2), torch.ones(K, L, 2)
    previous = get_num_threads()
    set_num_threads(threads)
    try:
        weighted_dtw([torch.zeros(T, 2), torch.zeros(5, 2)], C, W, backend="cpu")
    finally:
        set_num_threads(previous)
    N = T + 5
    # One workspace, for each chunk of samples.
    assert set(sizes) == {min(K * L * N, max(2**20, min(K, 4 * threads) * L * T))}
    assert _WORKSPACE_FORMULA in " ".join(weighted_dtw_path.__doc__.split())
    readme = (ROOT / "README.md").read_text()
    assert _WORKSPACE_FORMULA.replace(" * ", "·") in readme
