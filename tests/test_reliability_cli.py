"""Reliability of the command line and of the files it reads and writes (issue 21, part 2):
every bad number, damaged or hostile file and unwritable destination is one line naming
its cause, with exit status 2, before any long work; the files written are safe to open.
"""

import os
import re

import joblib
import numpy as np
import pytest

from sktdtw import DejaVidClassifier
from sktdtw._cli import main
from sktdtw.io import write_store

from conftest import learnable_ragged


def _cli(capsys, *argv):
    """Run the command line; (exit status, stderr lines). An exception escaping it (a
    traceback for the user) fails the test."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    return status, capsys.readouterr().err.strip().splitlines()


def _one_line_error(capsys, pattern, *argv):
    status, err = _cli(capsys, *argv)
    assert status == 2, err
    assert len(err) == 1 and re.search(pattern, err[0]), err
    return err[0]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    X, y = learnable_ragged(8), np.arange(8) % 2
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    joblib.dump(DejaVidClassifier(max_epochs=1, centroid_length=3, init="mean",
                                  n_prototypes=1, random_state=0).fit(X, y), path)
    return path


def _flip_header(file):
    """Turn the ``{`` that opens the .npy header into ``z``: NumPy then retries the header
    as Python 2 text and :mod:`tokenize` raises TokenError."""
    data = bytearray(file.read_bytes())
    assert data[10:11] == b"{"
    data[10] ^= 1
    file.write_bytes(bytes(data))


# ------------------------------------------------------------ item 9: damaged .npy headers


def test_corrupted_npy_header_in_a_manifest_is_named(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.ones((4, 3), np.float32))
    _flip_header(tmp_path / "a.npy")
    (tmp_path / "m.csv").write_text("id,path,label\na,a.npy,x\n")
    _one_line_error(capsys, r"row 1 \(id 'a'\): file .*a\.npy cannot be read: the \.npy "
                    "header is corrupted", "build-store", "--manifest", tmp_path / "m.csv",
                    "--out", tmp_path / "s")


def test_corrupted_values_header_of_a_store_is_named(tmp_path, capsys, model_file):
    write_store(tmp_path / "s", learnable_ragged(8))
    _flip_header(tmp_path / "s" / "values.npy")
    _one_line_error(capsys, r"values\.npy has no valid \.npy header: the \.npy header is "
                    "corrupted", "predict", "--model", model_file, "--store", tmp_path / "s",
                    "--out", tmp_path / "p.csv")


# ------------------------------------------------------------ item 19: CSV injection


def test_predictions_and_confusion_matrix_neutralise_formulas(tmp_path, capsys):
    import csv

    X = learnable_ragged(8)
    labels = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0"] * 4
    ids = [f"@SUM(A{i})" if i % 2 else f"-{i}" for i in range(8)]
    write_store(tmp_path / "s", X, labels=labels, ids=ids)
    clf = DejaVidClassifier(max_epochs=1, centroid_length=3, init="mean", n_prototypes=1,
                            random_state=0).fit(X, labels)
    joblib.dump(clf, tmp_path / "m.joblib")
    common = ["--model", tmp_path / "m.joblib", "--store", tmp_path / "s"]
    assert _cli(capsys, "predict", *common, "--out", tmp_path / "p.csv")[0] == 0
    assert _cli(capsys, "evaluate", *common, "--out-dir", tmp_path)[0] == 0
    for name in ("p.csv", "confusion_matrix.csv"):
        with open(tmp_path / name, newline="") as fp:
            cells = [cell for row in csv.reader(fp) for cell in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")], (name, cells)
        # A plain number stays a number; "-1", "-3", ... are ids here.
        assert all(re.fullmatch(r"-\d+(\.\d*)?(e-?\d+)?", c) for c in cells if c[:1] == "-")
    with open(tmp_path / "p.csv", newline="") as fp:
        rows = list(csv.reader(fp))
    assert [row[0] for row in rows[1:]] == [i if i.startswith("-") else "'" + i for i in ids]
    assert rows[0][2] == "proba_+cmd|' /C calc'!A0"  # not at the start of the cell: harmless
    assert {row[1] for row in rows[1:]} <= {"'" + label for label in labels}


# ------------------------------------------------------------ item 18: paths of a manifest


@pytest.mark.parametrize("path", ["../outside/secret.npy", "{outside}/secret.npy",
                                  "link/secret.npy", "~/secret.npy"])
def test_manifest_paths_outside_its_folder_are_refused(tmp_path, capsys, monkeypatch, path):
    outside, folder = tmp_path / "outside", tmp_path / "data"
    outside.mkdir()
    folder.mkdir()
    np.save(outside / "secret.npy", np.ones((4, 3), np.float32))
    os.symlink(outside, folder / "link")
    monkeypatch.setenv("HOME", str(outside))
    np.save(folder / "a.npy", np.ones((4, 3), np.float32))
    path = path.format(outside=outside)
    (folder / "m.csv").write_text(f"id,path\na,a.npy\nb,{path}\n")
    argv = ["build-store", "--manifest", folder / "m.csv", "--out", tmp_path / "s"]
    _one_line_error(capsys, rf"row 2 \(id 'b'\): path '{re.escape(path)}' is .*outside"
                    rf"[/\\]secret\.npy, outside .*data .*pass --allow-outside-root", *argv)
    assert not (tmp_path / "s").exists()
    assert _cli(capsys, *argv, "--allow-outside-root")[0] == 0


def test_video_manifest_paths_outside_its_folder_are_refused(tmp_path):
    pytest.importorskip("av")
    from sktdtw import TSESlidingEncoder
    from sktdtw.video import encode_videos

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "v.csv").write_text("id,path,label\na,../secret.mp4,0\n")
    with pytest.raises(ValueError, match=r"row 1 \(id 'a'\): path '\.\./secret\.mp4' is "
                       r".*secret\.mp4, outside .*data"):
        encode_videos(tmp_path / "data" / "v.csv", TSESlidingEncoder(), tmp_path / "s")
    assert not (tmp_path / "s.partial").exists()


# ------------------------------------------------------------ item 17: saved models


def test_models_record_the_sktdtw_version_and_check_it_on_load(model_file, tmp_path, capsys,
                                                                monkeypatch):
    import pickle

    import sktdtw
    from sktdtw._persistence import SktdtwVersionWarning

    model = joblib.load(model_file)  # the same version: no warning (warnings are errors)
    assert model.__getstate__()["_sktdtw_version"] == sktdtw.__version__
    saved, saved_version = pickle.dumps(model), sktdtw.__version__
    monkeypatch.setattr(sktdtw, "__version__", "0.0.1")
    with pytest.warns(SktdtwVersionWarning, match=rf"DejaVidClassifier was saved by sktdtw "
                      rf"{re.escape(saved_version)} and "
                      r"is loaded by sktdtw 0\.0\.1: it may fail or give other results"):
        pickle.loads(saved)
    write_store(tmp_path / "s", learnable_ragged(8))
    monkeypatch.setattr(sktdtw, "__version__", "0.0.1")
    status, err = _cli(capsys, "predict", "--model", model_file, "--store", tmp_path / "s",
                       "--out", tmp_path / "p.csv")
    assert status == 0 and len(err) == 1, err
    assert re.match(r"sktdtw predict: warning: .*model\.joblib: DejaVidClassifier was saved by "
                    r"sktdtw \S+ and is loaded by sktdtw 0\.0\.1", err[0])


def test_help_says_to_load_models_only_from_trusted_sources(capsys):
    for command in ("predict", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "load models only from trusted sources" in " ".join(capsys.readouterr().out.split())


# ------------------------------------------------------------ item 14: destinations


@pytest.fixture
def labelled_store(tmp_path):
    write_store(tmp_path / "s", learnable_ragged(8), labels=np.arange(8) % 2)
    return tmp_path / "s"


@pytest.fixture
def no_fit(monkeypatch):
    def never(self, X, y):
        raise AssertionError("fitted before the destination was checked")

    monkeypatch.setattr(DejaVidClassifier, "fit", never)


def test_fit_to_a_directory_is_refused_before_fitting(labelled_store, tmp_path, capsys,
                                                      no_fit):
    (tmp_path / "folder").mkdir()
    message = _one_line_error(capsys, r"Is a directory.*: '.*folder'$", "fit", "--store",
                              labelled_store, "--out", tmp_path / "folder")
    assert ".tmp-" not in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="needs POSIX permissions that apply (not root)")
def test_fit_to_an_unwritable_folder_is_refused_before_fitting(labelled_store, tmp_path,
                                                               capsys, no_fit):
    (tmp_path / "ro").mkdir(0o555)
    message = _one_line_error(capsys, r"Permission denied: '.*ro[/\\]m\.joblib'$", "fit",
                              "--store", labelled_store, "--out", tmp_path / "ro" / "m.joblib")
    assert ".tmp-" not in message


@pytest.mark.parametrize("code", ["ENOSPC", "EFBIG"])
def test_a_full_disk_names_the_file(tmp_path, monkeypatch, code):
    import errno

    from sktdtw._atomic import atomic_file

    def full(fd):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    monkeypatch.setattr(os, "fsync", full)  # where a full disk shows, past the buffers
    with pytest.raises(OSError, match=rf"\[Errno {getattr(errno, code)}\] .*: '.*m\.joblib'"):
        with atomic_file(tmp_path / "m.joblib") as fp:
            fp.write(b"model")
    with pytest.raises(OSError, match=rf"\[Errno {getattr(errno, code)}\] .*: '.*[/\\]s'"):
        write_store(tmp_path / "s", learnable_ragged(8))
    assert os.listdir(tmp_path) == []


def test_a_model_pickled_without_a_version_warns_too(model_file):
    import pickle

    from sktdtw._persistence import SktdtwVersionWarning

    model = joblib.load(model_file)
    state = model.__getstate__()
    del state["_sktdtw_version"]
    bare = DejaVidClassifier.__new__(DejaVidClassifier)
    with pytest.warns(SktdtwVersionWarning, match="DejaVidClassifier was saved by an sktdtw "
                      "that did not record its version and is loaded by sktdtw"):
        bare.__setstate__(state)
    assert not hasattr(bare, "_sktdtw_version")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(bare)).centroids_,
                                  model.centroids_)


def test_a_fifo_in_a_manifest_is_named_as_such(tmp_path, capsys):
    os.mkfifo(tmp_path / "a.npy")
    (tmp_path / "m.csv").write_text("id,path\na,a.npy\n")
    _one_line_error(capsys, r"row 1 \(id 'a'\): file .*a\.npy is not a regular file",
                    "build-store", "--manifest", tmp_path / "m.csv", "--out", tmp_path / "s")
