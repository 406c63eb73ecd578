"""The main job: ``python -m sktdtw demo``."""

import re
import subprocess
import sys
import time
from importlib import import_module

import pytest
import tomllib

from sktdtw._cli import main
from sktdtw._cli.parser import FIGURE_NAME

from conftest import ROOT, subprocess_env

_ROW = re.compile(
    r"^(DejaVid|mean pooling \+ logistic)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d,]+)$"
)


def _run_demo(*args):
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sktdtw", "demo", *args],
        capture_output=True, text=True, env=subprocess_env(), cwd=ROOT, timeout=600,
    )
    return done, time.perf_counter() - start


def _table(stdout):
    rows = {}
    for line in stdout.splitlines():
        match = _ROW.match(line.strip())
        if match:
            name, accuracy, fit_s, predict_s, n_params = match.groups()
            rows[name] = (float(accuracy), float(fit_s), float(predict_s),
                          int(n_params.replace(",", "")))
    return rows


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_reduced_demo_prints_the_table_and_writes_the_figure(tmp_path):
    n_classes, centroid_length = 3, 10
    done, _ = _run_demo("--n-videos", "90", "--n-classes", str(n_classes), "--max-epochs", "8",
                        "--centroid-length", str(centroid_length), "--out", str(tmp_path / "fig"))
    assert done.returncode == 0, done.stderr
    rows = _table(done.stdout)
    assert set(rows) == {"DejaVid", "mean pooling + logistic"}
    dejavid, baseline = rows["DejaVid"], rows["mean pooling + logistic"]
    # Learned parameters: centroids and weights (K * 3 prototypes, L, F) (15 training videos
    # per class, so 3 prototypes each); logistic coef (K, F) + intercept.
    n_features = int(re.search(r"embeddings of (\d+) features", done.stdout).group(1))
    # With the time derivatives appended (derivatives="auto" chose them), 2 F per step.
    n_model_features = n_features * (2 if "appends their time derivatives" in done.stdout else 1)
    assert dejavid[3] == 2 * n_classes * 3 * centroid_length * n_model_features
    assert baseline[3] == n_classes * n_features + n_classes
    for accuracy, fit_s, predict_s, _ in rows.values():
        assert 0 <= accuracy <= 1 and fit_s > 0 and predict_s > 0
    assert dejavid[0] > baseline[0]
    _assert_png(tmp_path / "fig" / FIGURE_NAME)


@pytest.mark.slow
def test_default_demo_meets_its_targets(tmp_path):
    done, seconds = _run_demo("--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    rows = _table(done.stdout)
    assert rows["DejaVid"][0] >= 0.94
    assert rows["mean pooling + logistic"][0] <= 0.35  # chance is 0.25
    assert seconds < 120
    _assert_png(tmp_path / FIGURE_NAME)


def test_without_matplotlib_the_figure_is_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    status = main(["demo", "--n-videos", "16", "--n-classes", "2", "--max-epochs", "1",
                   "--out", str(tmp_path)])
    assert status == 0
    assert "no figure written" in capsys.readouterr().out
    assert not (tmp_path / FIGURE_NAME).exists()


def test_help_and_invalid_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--n-videos", "--n-classes", "--max-epochs", "--seed", "--out"):
        assert option in help_text
    for bad in (["demo", "--n-videos", "0"], ["demo", "--n-classes", "9"], ["demo", "--bogus"],
                []):
        with pytest.raises(SystemExit) as exit_info:
            main(bad)
        assert exit_info.value.code == 2
    assert main(["demo", "--n-videos", "5", "--n-classes", "3"]) == 2
    assert "at least 2 per class" in capsys.readouterr().err


def test_console_script_points_at_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["sktdtw"].partition(":")
    assert getattr(import_module(module), function) is main


def test_the_figure_numbers_steps_alike_and_says_what_it_shows():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.pipeline import Pipeline

    from sktdtw import DejaVidClassifier, TSESlidingEncoder
    from sktdtw._cli.demo import demo_figure
    from sktdtw.datasets import make_action_videos
    from sktdtw.encoders import RandomConv3dEncoder

    videos, y = make_action_videos(n_videos=24, n_classes=2, random_state=0)
    dejavid = Pipeline([
        ("encoder", TSESlidingEncoder(RandomConv3dEncoder(), window=8, stride=4)),
        ("clf", DejaVidClassifier(centroid_length=6, max_epochs=2, random_state=0)),
    ]).fit(videos[:20], y[:20])
    fig = demo_figure(dejavid, [("DejaVid", 0.9, 1.0, 0.1, 100),
                                ("mean pooling + logistic", 0.5, 1.0, 0.1, 10)],
                      videos[20], y[20])
    try:
        _, mass, path = fig.axes[:3]
        # The weight panel: a unit and a sentence saying what the curves are.
        assert "1 = average" in mass.get_ylabel()
        assert any("summed over the features" in text.get_text() for text in mass.texts)
        # Steps 1..6 in both panels: the weight curves and the cost rows and warping path.
        assert all(list(line.get_xdata()) == [1, 2, 3, 4, 5, 6] for line in mass.lines[:2])
        left, right, bottom, top = path.images[0].get_extent()
        assert (top, bottom) == (0.5, 6.5)
        warping = path.lines[0].get_ydata()
        assert min(warping) == 1 and max(warping) == 6
        assert re.search(r", (correct|wrong)\n", path.get_title())
        assert "dark rows" in fig.axes[3].get_ylabel()  # the colour bar explains them
    finally:
        plt.close(fig)
