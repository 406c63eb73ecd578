"""Reliability: a matrix of bad inputs and faults, each a clear error or a correct result.

Nothing silent, nothing lost: every case ends in an error that names its cause (and the
sample, row or file where there is one) or in the correct result, never in a crash, a hang,
NaN/inf, a wrong result, a traceback of the command line, or lost data. Cases that reach
compiled code with bad input could crash the interpreter, so each runs in its own process
with a time limit; kill -9 is real (a forked child kills itself at the chosen point); the
rest, pure Python, run here.
"""

import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from sktdtw import DBAInitializer, DejaVidClassifier, TSESlidingEncoder
from sktdtw._atomic import atomic_file
from sktdtw._cli import main
from sktdtw._training.checkpoint import read_checkpoint, save_checkpoint
from sktdtw.dtw import DistanceOverflowError, PackedBatch, max_num_threads, weighted_dtw
from sktdtw.io import build_store, open_store, write_store

import dtw_oracle as oracle
from conftest import learnable_ragged, object_array, subprocess_env

TIMEOUT = 120

# ------------------------------------------------------------ compiled code, isolated

_PRELUDE = """
import json, torch
from sktdtw.dtw import PackedBatch, weighted_dtw, set_num_threads
from sktdtw.dtw._backends._cpu import CPUBackend
g = torch.Generator().manual_seed(0)
V = torch.rand(10, 3, generator=g)
offsets = torch.tensor([0, 4, 10])
C = torch.rand(2, 4, 3, generator=g)
W = torch.rand(2, 4, 3, generator=g) + 0.5
def report(case):
    try:
        value = case()
    except Exception as exc:
        result = {"type": type(exc).__name__, "message": str(exc)}
    else:
        result = {"type": None, "value": value}
    print("RESULT " + json.dumps(result))
"""

# name: (body of case(), expected error type, regex its message must match)
_ISOLATED = {
    "offsets past the end, check_input=False": (
        "weighted_dtw(PackedBatch(V, torch.tensor([0, 5, 100])), C, W, check_input=False)",
        "ValueError", r"end at len\(values\) = 10",
    ),
    "decreasing offsets, check_input=False": (
        "weighted_dtw(PackedBatch(V, torch.tensor([0, 7, 3, 10])), C, W, check_input=False)",
        "ValueError", "sample 1 has length -4",
    ),
    "int32 offsets, check_input=False": (
        "weighted_dtw(PackedBatch(V, offsets.int()), C, W, check_input=False)",
        "ValueError", "offsets must be a 1-D int64 tensor",
    ),
    "mis-shaped weights, check_input=False": (
        "weighted_dtw(PackedBatch(V, offsets), C, W[:, :3], check_input=False)",
        "ValueError", r"weights have shape \(2, 3, 3\) but centroids have \(2, 4, 3\)",
    ),
    "values with fewer features, check_input=False": (
        "weighted_dtw(PackedBatch(V[:, :2].contiguous(), offsets), C, W, check_input=False)",
        "ValueError", "values have 2 features but the centroids have 3",
    ),
    "a too short path given to the cpu path_cost": (
        "CPUBackend.path_cost(V, offsets, C, W, torch.zeros((2, 2, 3, 2), dtype=torch.int32))",
        "ValueError", r"path must be an int32 tensor of shape \(2, 2, 4, 2\)",
    ),
    "a path past its sample given to the cpu path_grad": (
        "CPUBackend.path_grad(V, offsets, C, W, torch.full((2, 2, 4, 2), 7, dtype=torch.int32),"
        " torch.ones(2, 2), True)",
        "ValueError", "path of sample 0 has a range outside its 4 steps",
    ),
    "set_num_threads(100000), then an op": (
        "set_num_threads(100000)",
        "ValueError", r"between 1 and \d+ \(4 per CPU",
    ),
}


_FORK_SERVER = _PRELUDE + """
import os, sys, time
cases = json.loads(sys.argv[1])
summary = {}
for name, body in cases.items():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the case, then a valid op: a refused input must leave the process usable
        os.close(read_end)
        sys.stdout = os.fdopen(write_end, "w")
        report(eval("lambda: " + body))
        # The compiled and the torch backend sum in other orders: equal to rounding.
        report(lambda: torch.allclose(weighted_dtw([V], C, W, backend="cpu"),
                                      weighted_dtw([V], C, W, backend="torch"), rtol=1e-5))
        sys.stdout.flush()
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + %d
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if not done:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        summary[name] = {"status": "hang"}
        continue
    with os.fdopen(read_end) as fp:
        out = fp.read()
    summary[name] = {
        "status": "ok" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        else f"crash (wait status {status})",
        "results": [json.loads(line[7:]) for line in out.splitlines()
                    if line.startswith("RESULT ")],
    }
print("SUMMARY " + json.dumps(summary))
"""


@pytest.fixture(scope="module")
def isolated():
    """Every isolated case, each in its own process forked from one interpreter that has
    imported torch and sktdtw but run no kernel (so no OpenMP pool crosses the fork), with
    a time limit: name -> {"status", "results"}."""
    env = subprocess_env(OMP_NUM_THREADS="2")
    cases = json.dumps({name: body for name, (body, _, _) in _ISOLATED.items()})
    done = subprocess.run([sys.executable, "-c", _FORK_SERVER % TIMEOUT, cases],
                          capture_output=True, text=True, env=env, timeout=4 * TIMEOUT)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("SUMMARY "))
    return json.loads(line[len("SUMMARY "):])


@pytest.mark.parametrize("name", list(_ISOLATED))
def test_compiled_code_gets_no_bad_input(isolated, name):
    outcome = isolated[name]
    assert outcome["status"] == "ok", f"{name}: {outcome['status']}"
    first, after = outcome["results"]
    _, error_type, message = _ISOLATED[name]
    assert first["type"] == error_type, first
    assert re.search(message, first["message"]), first["message"]
    assert after == {"type": None, "value": True}, after


@pytest.mark.parametrize("n", [-1, 0.5, "4", True, 10 ** 9])
def test_set_num_threads_refuses_bad_values(n):
    from sktdtw.dtw import get_num_threads, set_num_threads

    before = get_num_threads()
    with pytest.raises((TypeError, ValueError), match="set_num_threads"):
        set_num_threads(n)
    assert get_num_threads() == before
    set_num_threads(max_num_threads())  # the bound itself is accepted
    set_num_threads(None)


# ------------------------------------------------------------ overflow, float offsets


def test_overflowing_costs_are_an_error_naming_the_sample():
    C = torch.zeros(2, 3, 4)
    X = [torch.ones(3, 4), torch.full((3, 4), 1e38), torch.ones(2, 4)]
    for backend in ("cpu", "torch"):
        with pytest.raises(DistanceOverflowError, match="sample 1 to centroid 0 overflows "
                                                        "float32.*scale the data"):
            weighted_dtw(X, C, torch.ones_like(C), backend=backend)
        Cg = C.clone().requires_grad_()
        with pytest.raises(DistanceOverflowError, match="sample 1"):
            weighted_dtw(X, Cg, torch.ones_like(C), backend=backend)
    # float64 holds them: the same data is a correct, finite result there.
    X64 = [x.double() for x in X]
    dist = weighted_dtw(X64, C.double(), torch.ones_like(C.double()))
    expected = oracle.weighted_dtw_path(
        [x.numpy() for x in X64], C.double().numpy(), np.ones((2, 3, 4)))[0]
    np.testing.assert_allclose(dist.numpy(), expected, rtol=1e-12)


def test_dba_on_values_near_the_float32_limit():
    """DBA averages in float64: constant classes at +-3e38 give their exact barycenters."""
    X = [np.full((5, 2), 3e38, np.float32), -np.full((6, 2), 3e38, np.float32)] * 2
    dba = DBAInitializer(centroid_length=3, max_iter=2, random_state=0).fit(X, [0, 1, 0, 1])
    np.testing.assert_array_equal(dba.centroids_[0], np.float32(3e38))
    np.testing.assert_array_equal(dba.centroids_[1], np.float32(-3e38))


def test_float_offsets_are_refused_not_truncated():
    with pytest.raises(ValueError, match="offsets have dtype torch.float32; expected integers"):
        weighted_dtw(PackedBatch(torch.ones(10, 2), torch.tensor([0.0, 5.5, 10.0])),
                     torch.ones(1, 2, 2), torch.ones(1, 2, 2))


# ------------------------------------------------------------ stores


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(t, 3)).astype(np.float32) for t in (4, 7, 5, 6)]
    write_store(tmp_path / "s", series, labels=["a", "b", "a", "b"],
                splits=["train", "train", "test", "test"])
    return tmp_path / "s", series


def _flip(file, position):
    data = bytearray(file.read_bytes())
    data[position] ^= 0x5A
    file.write_bytes(bytes(data))


def _set_meta(path, **changes):
    meta = json.loads((path / "meta.json").read_text())
    meta.update(changes)
    (path / "meta.json").write_text(json.dumps(meta))


_SMALL_FILES = ["offsets.npy", "checksums.npy", "ids.npy", "labels.npy", "splits.npy"]


@pytest.mark.parametrize("name", _SMALL_FILES)
@pytest.mark.parametrize("damage", ["empty", "flipped byte", "truncated", "missing"])
def test_damaged_store_file_is_an_error_naming_it(store, name, damage):
    path, _ = store
    file = path / name
    if damage == "empty":
        file.write_bytes(b"")
    elif damage == "flipped byte":
        _flip(file, file.stat().st_size - 3)
    elif damage == "truncated":
        file.write_bytes(file.read_bytes()[:-5])
    else:
        file.unlink()
    with pytest.raises(ValueError, match=f"TSE store {path}: {name} "):
        open_store(path)


def test_edited_offset_that_stays_increasing_is_caught(store):
    path, _ = store
    offsets = np.load(path / "offsets.npy")
    offsets[2] += 1
    np.save(path / "offsets.npy", offsets)
    with pytest.raises(ValueError, match="offsets.npy does not match its digest"):
        open_store(path)


@pytest.mark.parametrize("changes, message", [
    ({"n_samples": "4"}, r"n_samples: '4' \(str\); expected a int"),
    ({"n_samples": True}, r"n_samples: True \(bool\); expected a int"),
    ({"n_rows": -1}, "n_rows: -1; expected a count >= 0"),
    ({"has_labels": 1}, r"has_labels: 1 \(int\); expected a bool"),
    ({"digests": None}, "digests: None"),
    ({"format_version": 3}, "format version 3"),
])
def test_bad_meta_json_is_an_error_naming_it(store, changes, message):
    path, _ = store
    _set_meta(path, **changes)
    with pytest.raises(ValueError, match=f"meta.json has {message}|meta.json.*{message}"):
        open_store(path)


@pytest.mark.parametrize("sample", range(4))
def test_flipped_value_byte_is_an_error_naming_the_sample(store, sample):
    path, series = store
    file = path / "values.npy"
    with open(file, "rb") as fp:
        np.lib.format.read_magic(fp)
        np.lib.format.read_array_header_1_0(fp)
        header = fp.tell()
    start = header + 4 * 3 * sum(len(x) for x in series[:sample])
    _flip(file, start + 5)
    opened = open_store(path)  # opening reads no series
    with pytest.raises(ValueError, match=f"values.npy holds bytes of sample {sample} "
                                         f"\\(id '{sample}'\\) that do not match"):
        opened[sample]
    with pytest.raises(ValueError, match=f"sample {sample}"):
        opened.read_batch([sample])
    with pytest.raises(ValueError, match=f"sample {sample}"):
        DejaVidClassifier(max_epochs=1, init="mean", n_prototypes=1).fit(opened, opened.labels)
    for i in set(range(4)) - {sample}:  # the others are intact and read correctly
        np.testing.assert_array_equal(opened[i], series[i])


def test_cli_reports_a_corrupt_store_in_one_line(store, tmp_path, capsys):
    path, _ = store
    (path / "labels.npy").write_bytes(b"")
    assert main(["fit", "--store", str(path), "--out", str(tmp_path / "m.joblib")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labels.npy" in err[0] and "Traceback" not in err[0]


def test_version_1_stores_are_still_read(store):
    """Stores written before digests and checksums existed: read, unchecked."""
    path, series = store
    meta = json.loads((path / "meta.json").read_text())
    del meta["digests"]
    meta["format_version"] = 1
    (path / "meta.json").write_text(json.dumps(meta))
    (path / "checksums.npy").unlink()
    for got, want in zip(open_store(path), series):
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------ checkpoints


@pytest.fixture(scope="module")
def finished_fit(tmp_path_factory):
    X = [np.random.default_rng(i).normal(size=(6 + i % 4, 2)).astype(np.float32)
         for i in range(24)]
    y = np.arange(24) % 3
    path = tmp_path_factory.mktemp("ckpt") / "run.pt"
    params = dict(centroid_length=3, max_epochs=2, batch_size=8, init="mean", n_prototypes=1,
                  random_state=0,
                  learning_rate=0.05, checkpoint=str(path))
    clf = DejaVidClassifier(**params).fit(X, y)
    return path, path.read_bytes(), X, y, params, clf


def _tensor_bytes(checkpoint):
    """(start, size) of every tensor's bytes in a checkpoint file (its zip records
    ``.../data/N``; a local header's extra field, padding for alignment, is skipped)."""
    ranges = []
    with zipfile.ZipFile(io.BytesIO(checkpoint)) as archive:
        for info in archive.infolist():
            if "/data/" in info.filename:
                at = info.header_offset
                name_length, extra_length = struct.unpack("<HH", checkpoint[at + 26:at + 30])
                ranges.append((at + 30 + name_length + extra_length, info.file_size))
    return ranges


def _same_state(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_state(x, z) for x, z in zip(a, b))
    return a == b


def test_every_flipped_checkpoint_byte_is_an_error_or_harmless(finished_fit, tmp_path):
    """One byte flipped at a time, over the stored tensors' bytes and a sample of the
    rest: the load is a ValueError naming the file, or (a byte that carries no data, e.g.
    zip padding) the very same state."""
    path, original, *_ = finished_fit
    reference = read_checkpoint(path)
    # Every 4th byte of the parameters' and optimiser's tensors (the last, large record is
    # the generator state: every 40th), and every 97th byte of the file.
    ranges = _tensor_bytes(original)
    positions = sorted({start + i for start, size in ranges[:-1] for i in range(0, size, 4)}
                       | set(range(ranges[-1][0], ranges[-1][0] + ranges[-1][1], 40))
                       | set(range(0, len(original), 97)))
    copy = tmp_path / "run.pt"
    errors = harmless = 0
    for position in positions:
        data = bytearray(original)
        data[position] ^= 0x01
        copy.write_bytes(bytes(data))
        try:
            state = read_checkpoint(copy)
        except ValueError as exc:
            assert str(copy) in str(exc)
            errors += 1
        else:
            assert _same_state(state, reference), f"byte {position} changed the state silently"
            harmless += 1
    assert errors > len(positions) // 2  # most bytes carry data


def test_corrupt_checkpoint_stops_fit_naming_the_file(finished_fit, tmp_path):
    path, original, X, y, params, _ = finished_fit
    copy = tmp_path / "run.pt"
    data = bytearray(original)
    data[_tensor_bytes(original)[0][0]] ^= 0x10  # the first tensor's first byte
    copy.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"checkpoint '{copy}' is corrupted"):
        DejaVidClassifier(**{**params, "checkpoint": str(copy)}).fit(X, y)


def test_checkpoint_without_format_version_is_refused(finished_fit, tmp_path):
    path, *_ = finished_fit
    old = tmp_path / "old.pt"
    torch.save(read_checkpoint(path), old)  # the layout before format versions
    with pytest.raises(ValueError, match="not a DejaVidClassifier checkpoint of this version"):
        read_checkpoint(old)
    saved = torch.load(path, weights_only=True)
    saved["format_version"] = 0
    torch.save(saved, old)
    with pytest.raises(ValueError, match="format version 0; this version of sktdtw resumes "
                                         "version 2 only"):
        read_checkpoint(old)


# ------------------------------------------------------------ kill -9 during writes


def _killed(action, timeout=60):
    """Run ``action(kill)`` in a forked child; ``kill()`` is a real SIGKILL of the child at
    the point the action calls it. Returns once the child is dead (never a hang)."""
    pid = os.fork()
    if pid == 0:
        try:
            action(lambda: os.kill(os.getpid(), signal.SIGKILL))
        finally:
            os._exit(3)  # the action returned or raised without being killed
    for _ in range(timeout * 100):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
            return
        __import__("time").sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the child hung")


def _series(n, value):
    return [np.full((3 + i, 2), value + i, np.float32) for i in range(n)]


def _assert_store(path, series):
    store = open_store(path)
    assert len(store) == len(series)
    for got, want in zip(store, series):
        np.testing.assert_array_equal(got, want)


def test_killed_store_write_leaves_debris_that_the_next_write_removes(tmp_path):
    path = tmp_path / "s"

    def write(kill):
        def series():
            yield from _series(2, 0)
            kill()

        write_store(path, series())

    _killed(write)
    assert not path.exists()
    assert [p.name for p in tmp_path.iterdir()][0].startswith(".s.tmp-")
    write_store(path, _series(3, 0))
    assert os.listdir(tmp_path) == ["s"]
    _assert_store(path, _series(3, 0))


def test_killed_overwrite_keeps_the_previous_store(tmp_path):
    path = tmp_path / "s"
    write_store(path, _series(3, 0))

    def overwrite(kill):
        def series():
            yield from _series(2, 10)
            kill()

        write_store(path, series(), overwrite=True)

    _killed(overwrite)
    _assert_store(path, _series(3, 0))
    write_store(path, _series(4, 10), overwrite=True)
    assert os.listdir(tmp_path) == ["s"]
    _assert_store(path, _series(4, 10))


def test_overwrite_killed_between_the_two_renames_loses_nothing(tmp_path):
    """Where the two directories cannot be swapped in one call, the old store is moved aside
    first: a kill just then leaves no store at the path until it is next opened or written,
    which puts the old one back."""
    import sktdtw._atomic as atomic

    path = tmp_path / "s"
    write_store(path, _series(3, 0))

    def overwrite(kill):
        atomic._exchange = lambda a, b: False
        real_rename, calls = os.rename, []

        def rename(a, b):
            calls.append(a)
            if len(calls) == 2:  # the old store is aside, the new one not yet in place
                kill()
            real_rename(a, b)

        os.rename = rename
        write_store(path, _series(2, 10), overwrite=True)

    _killed(overwrite)
    assert not path.exists()
    _assert_store(path, _series(3, 0))  # opening puts the previous store back
    write_store(path, _series(4, 10), overwrite=True)
    assert os.listdir(tmp_path) == ["s"]


def test_overwrite_killed_after_the_swap_keeps_the_new_store(tmp_path):
    import sktdtw._atomic as atomic

    path = tmp_path / "s"
    write_store(path, _series(3, 0))

    def overwrite(kill):
        atomic.shutil.rmtree = lambda *args, **kwargs: kill()  # before the old one is removed
        write_store(path, _series(2, 10), overwrite=True)

    _killed(overwrite)
    _assert_store(path, _series(2, 10))
    assert len(os.listdir(tmp_path)) == 2  # the previous store, as debris
    write_store(path, _series(4, 10), overwrite=True)
    assert os.listdir(tmp_path) == ["s"]


def test_killed_checkpoint_save_keeps_the_previous_one(tmp_path):
    path = tmp_path / "run.pt"
    state = {"epoch": 1, "C": torch.arange(6.0)}
    save_checkpoint(path, state)

    def save(kill):
        def partial(obj, fp):
            fp.write(b"PK\x03\x04 partial")
            fp.flush()
            kill()

        torch.save = partial
        save_checkpoint(path, {"epoch": 2, "C": torch.zeros(6)})

    _killed(save)
    assert _same_state(read_checkpoint(path), state)
    assert len(os.listdir(tmp_path)) == 2
    save_checkpoint(path, {"epoch": 2, "C": torch.zeros(6)})
    assert os.listdir(tmp_path) == ["run.pt"] and read_checkpoint(path)["epoch"] == 2


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    """Debris is removed only when its writer is dead: a concurrent write is not broken."""
    path = tmp_path / "out.csv"
    with atomic_file(path, "w") as fp:
        fp.write("a")
        live = [p for p in tmp_path.iterdir()]
        with atomic_file(path, "w") as other:  # same process: alive
            other.write("b")
        assert all(p.exists() for p in live)
    assert path.read_text() == "a" and os.listdir(tmp_path) == ["out.csv"]


# ------------------------------------------------------------ file modes


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o027])
def test_written_files_honour_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        store = write_store(tmp_path / "s", _series(2, 0), labels=[0, 1])
        save_checkpoint(tmp_path / "run.pt", {"epoch": 0})
        with atomic_file(tmp_path / "out" / "p.csv", "w") as fp:
            fp.write("id\n")
    finally:
        os.umask(previous)
    assert (Path(store.path).stat().st_mode & 0o777) == 0o777 & ~umask
    for file in [*Path(store.path).iterdir(), tmp_path / "run.pt", tmp_path / "out" / "p.csv"]:
        assert (file.stat().st_mode & 0o777) == 0o666 & ~umask, file


# ------------------------------------------------------------ inputs of the estimators


@pytest.fixture(scope="module")
def fitted():
    X, y = learnable_ragged(12), np.arange(12) % 2
    return DejaVidClassifier(max_epochs=1, centroid_length=3, init="mean", n_prototypes=1,
                             random_state=0).fit(X, y), X, y


def test_ragged_containers_give_the_result_of_a_list(fitted):
    """A ragged object array, a pandas Series of arrays and tensors requiring grad are the
    same data as the list: the same predictions, not numpy's "setting an array element"."""
    import pandas as pd  # installed with aeon (the test extra)

    clf, X, y = fitted
    expected = clf.predict_proba(X)
    for same in (object_array(X), pd.Series(X),
                 [torch.tensor(x, requires_grad=True) for x in X]):
        np.testing.assert_array_equal(clf.predict_proba(same), expected)
    refit = DejaVidClassifier(**clf.get_params()).fit(object_array(X), y)
    np.testing.assert_array_equal(refit.centroids_, clf.centroids_)


_BAD_INPUTS = {
    "empty list to the encoder": (
        lambda clf, X: TSESlidingEncoder("mean", window=2).fit_transform([]),
        ValueError, "X is empty: need at least one series"),
    "a generator as X": (
        lambda clf, X: clf.predict(x for x in X), TypeError,
        "X is a generator; .* list()"),
    "a single (T, F) array": (
        lambda clf, X: clf.predict(X[0]), ValueError,
        r"2-D array of shape \(\d+, 3\), read as \d+ univariate series, but the estimator "
        r"expects 3 features; a single \(T, F\) series x is passed as \[x\]"),
    "device='meta'": (
        lambda clf, X: DejaVidClassifier(device="meta", max_epochs=1).fit(X, [0, 1] * 6),
        ValueError, "device='meta' holds no data"),
    "labels mixing str and int": (
        lambda clf, X: DejaVidClassifier(max_epochs=1).fit(X, object_array(["a", 1] * 6)),
        ValueError, "y mixes str and number labels"),
    "labels mixing str and int, DBA": (
        lambda clf, X: DBAInitializer().fit(X, object_array(["a", 1] * 6)),
        ValueError, "y mixes str and number labels"),
    "a NaN inside a series": (
        lambda clf, X: clf.predict(X[:3] + [np.where(np.arange(15).reshape(5, 3) == 7,
                                                      np.nan, 1.0)]),
        ValueError, "sample 3 of X contains non-finite values .* at time step 2"),
    "another feature count": (
        lambda clf, X: clf.predict(X[:2] + [np.ones((4, 2))]),
        ValueError, "sample 2 of X has 2 features, but the estimator is expecting 3"),
}


@pytest.mark.parametrize("name", list(_BAD_INPUTS))
def test_bad_estimator_input_is_a_clear_error(fitted, name):
    clf, X, _ = fitted
    call, error, message = _BAD_INPUTS[name]
    with pytest.raises(error, match=message):
        call(clf, X)


def test_video_tensor_is_the_same_as_the_array():
    video = np.random.default_rng(0).random((2, 12, 4, 4)).astype(np.float32)
    encoder = TSESlidingEncoder("mean", window=4, stride=2)
    for a, b in zip(encoder.fit_transform(video), encoder.fit_transform(torch.from_numpy(video))):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ the command line


def _cli(capsys, *argv):
    """Run the command line; (exit status, stderr lines). An exception escaping it (a
    traceback for the user) fails the test."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    return status, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def cli_files(tmp_path, fitted):
    clf, X, y = fitted
    (tmp_path / "f").mkdir()
    lines = ["id,path,label"]
    for i, x in enumerate(X):
        np.save(tmp_path / "f" / f"{i}.npy", x)
        lines.append(f"s{i},f/{i}.npy,{y[i]}")
    (tmp_path / "labelled.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "unlabelled.csv").write_text(
        "\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    joblib.dump(clf, tmp_path / "model.joblib")
    # Finite float32 values (at most 1e38) whose distances overflow it.
    write_store(tmp_path / "huge", [x * np.float32(1e38 / np.abs(x).max()) for x in X])
    write_store(tmp_path / "labelled", X, labels=y)
    (tmp_path / "garbage.joblib").write_bytes(b"not a model")
    return tmp_path


_CLI_ERRORS = {
    "fit on a missing store": (["fit", "--store", "{d}/nowhere", "--out", "{d}/m"],
                               "no TSE store at"),
    "fit on an unlabelled store": (["fit", "--store", "{d}/huge", "--out", "{d}/m"],
                                   "has no labels; fit needs them"),
    "predict with a missing model": (
        ["predict", "--model", "{d}/none.joblib", "--store", "{d}/huge", "--out", "{d}/p.csv"],
        "no model file at"),
    "predict with a file that is no model": (
        ["predict", "--model", "{d}/garbage.joblib", "--store", "{d}/huge", "--out",
         "{d}/p.csv"], "cannot load a model from .*garbage.joblib"),
    "predict on values overflowing float32": (
        ["predict", "--model", "{d}/model.joblib", "--store", "{d}/huge", "--out", "{d}/p.csv"],
        "sample 0 to centroid 0 overflows float32"),
    "build-store from a directory": (
        ["build-store", "--manifest", "{d}/f", "--out", "{d}/s"], "f is a directory"),
    "build-store onto an existing store": (
        ["build-store", "--manifest", "{d}/labelled.csv", "--out", "{d}/huge"],
        "huge already exists; pass --overwrite"),
    "a negative learning rate": (
        ["fit", "--store", "{d}/labelled", "--out", "{d}/m", "--learning-rate", "-1"],
        "learning_rate' parameter of DejaVidClassifier must be a float in the range "
        r"\(0.0, inf\). Got -1.0"),
}


@pytest.mark.parametrize("name", list(_CLI_ERRORS))
def test_cli_errors_are_one_line(cli_files, capsys, name):
    argv, message = _CLI_ERRORS[name]
    status, err = _cli(capsys, *(a.format(d=cli_files) for a in argv))
    assert status == 2, err
    assert len(err) == 1 and re.search(message, err[0]), err
    assert not (cli_files / "p.csv").exists()


def test_cli_row_path_that_is_a_directory(cli_files, capsys):
    (cli_files / "bad.csv").write_text("id,path,label\na,f,0\n")
    status, err = _cli(capsys, "build-store", "--manifest", cli_files / "bad.csv", "--out",
                       cli_files / "s")
    assert status == 2 and len(err) == 1
    assert re.search(r"row 1 \(id 'a'\): .*f is a directory, not a .npy or .pt file", err[0])


def test_cli_predicts_unlabelled_data_and_overwrites_stores(cli_files, capsys, fitted):
    clf, X, _ = fitted
    d = cli_files
    assert _cli(capsys, "build-store", "--manifest", d / "unlabelled.csv", "--out", d / "u")[0] == 0
    assert open_store(d / "u").labels is None
    assert _cli(capsys, "predict", "--model", d / "model.joblib", "--store", d / "u",
                "--out", d / "p.csv")[0] == 0
    rows = [line.split(",") for line in (d / "p.csv").read_text().splitlines()[1:]]
    assert [row[1] for row in rows] == [str(label) for label in clf.predict(X)]
    assert _cli(capsys, "build-store", "--manifest", d / "labelled.csv", "--out", d / "u",
                "--overwrite")[0] == 0
    assert open_store(d / "u").labels.tolist() == (np.arange(12) % 2).tolist()


def test_cli_says_when_a_checkpoint_was_already_finished(cli_files, capsys):
    d = cli_files
    build_store(d / "labelled.csv", d / "s")
    argv = ["fit", "--store", d / "s", "--out", d / "m.joblib", "--max-epochs", "1",
            "--init", "mean", "--n-prototypes", "1", "--centroid-length", "3",
            "--checkpoint", d / "run.pt", "--cv", "none", "--calibration", "none"]
    # (No cross-fits: they could choose 0 epochs, and a fit that trains none writes none.)
    assert _cli(capsys, *argv)[0] == 0
    first = capsys.readouterr()
    assert main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    assert "already holds a finished fit (1 epochs): nothing to train" in out, (first, out)


def test_help_imports_neither_torch_nor_sklearn():
    code = ("import sys\nfrom sktdtw._cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'sklearn', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=subprocess_env(),
                          timeout=TIMEOUT)
    assert "build-store" in done.stdout and "HEAVY []" in done.stdout, done.stdout + done.stderr
