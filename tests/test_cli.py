"""The store command line: build-store -> fit -> predict -> evaluate, options and errors."""

import csv
import json
import os
import socket
import subprocess
import sys

import joblib
import numpy as np
import pytest

from sktdtw import DejaVidClassifier
from sktdtw._cli import main
from sktdtw._cli.estimator_options import estimator_params
from sktdtw._cli.parser import build_parser
from sktdtw._errors import InputError
from sktdtw.datasets import make_temporal_order
from sktdtw.io import open_store, write_store

from conftest import interrupt_after_epoch, subprocess_env

TINY = ["--max-epochs", "2", "--centroid-length", "3", "--init", "mean", "--n-prototypes", "1",
        "--random-state", "0", "--batch-size", "8"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A store built from .npy files and a manifest, and a model fitted on its train split."""
    folder = tmp_path_factory.mktemp("cli")
    X, y = make_temporal_order(48, n_classes=6, n_features=2, min_length=8, max_length=16,
                               random_state=0)
    (folder / "feats").mkdir()
    lines = ["id,path,label,split"]
    for i, (x, label) in enumerate(zip(X, y)):
        np.save(folder / "feats" / f"s{i}.npy", x)
        lines.append(f"s{i},feats/s{i}.npy,class{label},{'train' if i < 36 else 'test'}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    assert main(["build-store", "--manifest", str(folder / "manifest.csv"),
                 "--out", str(folder / "store")]) == 0
    assert main(["fit", "--store", str(folder / "store"), "--split", "train",
                 "--out", str(folder / "model.joblib"), *TINY]) == 0
    return folder


def _parse(*argv):
    return build_parser().parse_args(list(argv))


def test_build_store_and_fit(workdir):
    store = open_store(workdir / "store")
    assert len(store) == 48 and store.n_features == 2
    assert len(store.split("test")) == 12
    model = joblib.load(workdir / "model.joblib")
    assert isinstance(model, DejaVidClassifier)
    assert (model.max_epochs, model.centroid_length, model.init) == (2, 3, "mean")
    assert model.classes_.tolist() == [f"class{k}" for k in range(6)]
    assert model.centroids_.shape == (6, 3, 2)
    assert not [name for name in os.listdir(workdir) if name.endswith(".tmp")]


def test_predict(workdir):
    out = workdir / "predictions.csv"
    assert main(["predict", "--model", str(workdir / "model.joblib"),
                 "--store", str(workdir / "store"), "--split", "test", "--out", str(out)]) == 0
    rows = list(csv.reader(out.read_text().splitlines()))
    model = joblib.load(workdir / "model.joblib")
    assert rows[0] == ["id", "predicted"] + [f"proba_class{k}" for k in range(6)]
    test = open_store(workdir / "store").split("test")
    assert [row[0] for row in rows[1:]] == test.ids.tolist()
    series = list(test)
    assert [row[1] for row in rows[1:]] == model.predict(series).tolist()
    proba = np.array([[float(p) for p in row[2:]] for row in rows[1:]])
    np.testing.assert_allclose(proba, model.predict_proba(series), rtol=1e-12)


def test_evaluate(workdir, capsys):
    out = workdir / "eval"
    assert main(["evaluate", "--model", str(workdir / "model.joblib"),
                 "--store", str(workdir / "store"), "--split", "test",
                 "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads(printed[: printed.rindex("}") + 1]) == metrics

    model = joblib.load(workdir / "model.joblib")
    test = open_store(workdir / "store").split("test")
    series, labels = list(test), test.labels
    assert metrics["n_samples"] == 12 and metrics["n_classes"] == 6 and metrics["top5_k"] == 5
    assert metrics["top1_accuracy"] == pytest.approx(model.score(series, labels))
    ranked = np.argsort(-model.predict_proba(series), axis=1)[:, :5]
    top5 = np.mean([label in model.classes_[r] for label, r in zip(labels, ranked)])
    assert metrics["top5_accuracy"] == pytest.approx(top5)
    assert metrics["top5_accuracy"] >= metrics["top1_accuracy"]

    rows = list(csv.reader((out / "confusion_matrix.csv").read_text().splitlines()))
    assert rows[0] == ["true\\predicted"] + [f"class{k}" for k in range(6)]
    matrix = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    assert [row[0] for row in rows[1:]] == rows[0][1:]
    assert matrix.sum() == 12 and np.trace(matrix) / 12 == pytest.approx(
        metrics["top1_accuracy"])
    predicted = model.predict(series)
    assert matrix[0].sum() == np.sum(labels == "class0")
    assert matrix[:, 0].sum() == np.sum(predicted == "class0")


def test_top5_capped_at_the_number_of_classes(tmp_path):
    X, y = make_temporal_order(12, n_classes=2, n_features=2, min_length=6, max_length=9,
                               random_state=1)
    write_store(tmp_path / "s", X, labels=y)
    assert main(["fit", "--store", str(tmp_path / "s"), "--out", str(tmp_path / "m.joblib"),
                 *TINY]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "m.joblib"), "--store",
                 str(tmp_path / "s"), "--out-dir", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["top5_k"] == 2 and metrics["top5_accuracy"] == 1.0 and metrics["split"] is None


def test_help_lists_every_parameter(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in DejaVidClassifier().get_params():
        assert f"--{name.replace('_', '-')}" in text, name
    assert "Number of steps L of each centroid." in " ".join(text.split())
    assert "--centroid-length INT|auto" in text
    assert "--no-learn-weights" in text and "{dba,mean,medoid}" in text


def test_version(capsys):
    from sktdtw import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"sktdtw {__version__}"


def test_demo_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: DejaVidClassifier's)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert text.count("(default:") == 10  # every option but --help and the flag
    assert "--seed SEED seed of the videos, the split and the classifier (default: 0)" in text


def test_options_map_onto_parameters():
    args = _parse("fit", "--store", "S", "--out", "M", "--no-learn-weights", "--diagonal",
                  "--validation-fraction", "0.25", "--centroid-learning-rate", "none",
                  "--n-jobs", "2", "--random-state", "None", "--init", "medoid",
                  "--learning-rate", "3e-3", "--device", "cpu")
    params = estimator_params(args)
    assert params == {"learn_weights": False, "diagonal": True, "validation_fraction": 0.25,
                      "centroid_learning_rate": None, "n_jobs": 2, "random_state": None,
                      "init": "medoid", "learning_rate": 3e-3, "device": "cpu"}
    DejaVidClassifier(**params)._validate_params()
    # Unset options are absent, so the estimator keeps its own defaults.
    assert estimator_params(_parse("fit", "--store", "S", "--out", "M")) == {}


@pytest.mark.parametrize("argv", [
    ["--init", "kmeans"], ["--max-epochs", "two"], ["--validation-fraction", "half"],
    ["--store"],
])
def test_bad_options_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--store", "S", "--out", "M", *argv])
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_errors_are_one_line_with_status_2(workdir, tmp_path, capsys):
    model, store = str(workdir / "model.joblib"), str(workdir / "store")
    unlabelled = str(tmp_path / "unlabelled")
    write_store(unlabelled, [np.ones((4, 2))] * 3)
    cases = [
        (["fit", "--store", str(tmp_path / "nowhere"), "--out", "m"], "no TSE store at"),
        (["fit", "--store", store, "--split", "val", "--out", "m"], "no sample in split 'val'"),
        (["fit", "--store", unlabelled, "--out", "m"], "has no labels; fit needs them"),
        (["fit", "--store", store, "--out", "m", "--learning-rate", "-1"], "learning_rate"),
        (["predict", "--model", str(tmp_path / "none.joblib"), "--store", store, "--out", "p"],
         "no model file at"),
        (["predict", "--model", store + "/meta.json", "--store", store, "--out", "p"],
         "cannot load a model"),
        (["evaluate", "--model", model, "--store", unlabelled], "has no labels; evaluate needs"),
        (["evaluate", "--model", model, "--store", store, "--split", "dev"], "no sample in split"),
        (["build-store", "--manifest", str(tmp_path / "missing.csv"), "--out", "x"],
         "cannot be read"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (argv, err)
        assert err.startswith(f"sktdtw {argv[0]}: error: ")
    assert not os.path.exists("m") and not os.path.exists("p")


def test_subprocess_smoke(workdir, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "sktdtw", "evaluate", "--model", str(workdir / "model.joblib"),
         "--store", str(workdir / "store"), "--split", "test", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["n_samples"] == 12
    done = subprocess.run([sys.executable, "-m", "sktdtw", "predict", "--model", "nowhere",
                           "--store", "nowhere", "--out", "p.csv"],
                          capture_output=True, text=True, env=subprocess_env(), timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "sktdtw predict: error: no model file at nowhere"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fit_under_torchrun_environment(workdir, tmp_path):
    # Two processes with torchrun's environment: both join a Gloo group, rank 0 alone writes
    # the model, and it equals the model of a one-process fit.
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sktdtw", "fit", "--store", str(workdir / "store"),
             "--split", "train", "--out", str(tmp_path / f"rank{rank}.joblib"), *TINY],
            env=subprocess_env(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                     LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                     OMP_NUM_THREADS="1"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for rank in range(2)
    ]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert sorted(os.listdir(tmp_path)) == ["rank0.joblib"]
    two = joblib.load(tmp_path / "rank0.joblib")
    one = joblib.load(workdir / "model.joblib")
    np.testing.assert_allclose(two.centroids_, one.centroids_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(two.weights_, one.weights_, rtol=1e-4, atol=1e-5)


def test_demo_parser_knows_the_number_of_action_orders():
    """The parser is built without importing the data set module: its constant must match."""
    from sktdtw._cli.parser import _N_ACTION_ORDERS
    from sktdtw.datasets._videos import ACTION_ORDERS

    assert _N_ACTION_ORDERS == len(ACTION_ORDERS)


def test_a_bug_is_not_reported_as_a_user_error(workdir, tmp_path, monkeypatch, capsys):
    # A plain ValueError deep inside a command is a bug: it propagates with its traceback
    # instead of becoming a one-line "error:" with status 2.
    import sktdtw.io._format as format_module

    def buggy_offsets_check(*args):
        raise ValueError("an internal bug")

    monkeypatch.setattr(format_module, "_check_offsets", buggy_offsets_check)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["predict", "--model", str(workdir / "model.joblib"), "--store",
              str(workdir / "store"), "--out", str(tmp_path / "p.csv")])
    assert "error:" not in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_user_errors_from_deep_inside_are_one_line(workdir, tmp_path, monkeypatch, capsys):
    # What our validation raises (InputError) is the user's, from however deep, and so is a
    # file that cannot be written (an --out-dir that is a file).
    import sktdtw.io._format as format_module

    def invalid_offsets(*args):
        raise InputError("offsets.npy is not\nwhat meta.json says")

    model, store = str(workdir / "model.joblib"), str(workdir / "store")
    with monkeypatch.context() as patch:
        patch.setattr(format_module, "_check_offsets", invalid_offsets)
        assert main(["predict", "--model", model, "--store", store, "--out", "p"]) == 2
    assert capsys.readouterr().err == (
        "sktdtw predict: error: offsets.npy is not what meta.json says\n")
    (tmp_path / "file").write_text("")
    assert main(["evaluate", "--model", model, "--store", store,
                 "--out-dir", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sktdtw evaluate: error: ") and err.count("\n") == 1, err


def test_encode_rejects_a_bad_window_before_running(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["encode", "--videos", "v.csv", "--encoder", "e", "--out", "s",
              "--window", "8,wide"])
    assert exit_.value.code == 2
    assert "expected frames (an int) or a fraction" in capsys.readouterr().err
    args = build_parser().parse_args(["encode", "--videos", "v.csv", "--encoder", "e",
                                      "--out", "s", "--window", "8,0.5", "--stride", "2"])
    assert (args.window, args.stride) == ([8, 0.5], 2)
    args = build_parser().parse_args(["encode", "--videos", "v.csv", "--encoder", "e",
                                      "--out", "s"])
    assert (args.window, args.stride) == (0.2, 0.025)


def test_encode_size_is_a_shorter_edge_or_height_by_width(capsys):
    def size(*option):
        return build_parser().parse_args(["encode", "--videos", "v.csv", "--encoder", "e",
                                          "--out", "s", *option]).size

    assert (size(), size("--size", "112"), size("--size", "96x128")) == (None, 112, (96, 128))
    for bad in ("0", "96x0", "96x", "1x2x3", "wide"):
        with pytest.raises(SystemExit) as exit_:
            size("--size", bad)
        assert exit_.value.code == 2
        assert "expected N (the shorter edge) or HxW" in capsys.readouterr().err


def test_interrupted_fit_says_how_to_resume(workdir, tmp_path, monkeypatch, capsys):
    """Ctrl-C during a checkpointed fit printed a raw KeyboardInterrupt traceback."""
    checkpoint = tmp_path / "run.pt"
    argv = ["fit", "--store", str(workdir / "store"), "--split", "train", "--out",
            str(tmp_path / "model.joblib"), *TINY, "--cv", "none", "--calibration", "none",
            "--checkpoint", str(checkpoint)]
    with monkeypatch.context() as patch:
        interrupt_after_epoch(patch, 1)
        assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sktdtw fit: interrupted; "), err
    assert repr(str(checkpoint)) in err[0] and "the same command resumes" in err[0]
    assert not (tmp_path / "model.joblib").exists()
    assert main(argv) == 0  # resumed: the fit an uninterrupted run makes
    uninterrupted = tmp_path / "uninterrupted.joblib"
    assert main([*argv[:6], str(uninterrupted), *argv[7:-2]]) == 0
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").centroids_,
                                  joblib.load(uninterrupted).centroids_)
