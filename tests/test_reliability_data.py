"""Reliability of data handling (issue 21): manifests parsed strictly, stores that travel
to workers, what the op's check_input=False skips, and the op's workspace. Each test
reproduces a silent wrong result (or an unstated cost) it guards against."""

import numpy as np
import pytest

from sktdtw.io import build_store
from sktdtw.video._store import _read_video_manifest

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
