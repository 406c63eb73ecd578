"""Every script in examples/ runs, in its reduced size (SKTDTW_EXAMPLE_QUICK=1)."""

import ast
import re
import subprocess
import sys

from conftest import ROOT, subprocess_env

EXAMPLES = ROOT / "examples"


def _run(name, cwd=ROOT):
    env = subprocess_env(SKTDTW_EXAMPLE_QUICK="1", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr
    # Nothing silent, no noise: neither joblib's "Persisting input arguments took ..." nor
    # matplotlib's "FigureCanvasAgg is non-interactive" (a figure shown to no one).
    for noise in ("Persisting input arguments", "non-interactive"):
        assert noise not in done.stderr, done.stderr
    return done.stdout


def test_every_example_is_tested():
    assert {p.name for p in EXAMPLES.glob("*.py")} == {
        "plot_video_pipeline.py", "grid_search.py", "multivariate_series.py"
    }


def test_video_pipeline(tmp_path):
    """Headless (Agg), the figure is saved as a PNG rather than shown to no one."""
    out = _run("plot_video_pipeline.py", cwd=tmp_path)
    accuracy = float(re.search(r"test accuracy: ([\d.]+)", out)[1])
    assert 0 <= accuracy <= 1
    assert (tmp_path / "video_pipeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grid_search_reports_every_candidate_and_the_best():
    out = _run("grid_search.py")
    candidates = re.findall(r"^  ([\d.]+)  (\{.*\})$", out, flags=re.M)
    assert len(candidates) == 2 * 2 * 2
    scores = [float(score) for score, _ in candidates]
    best = ast.literal_eval(re.search(r"^best: (\{.*\})$", out, flags=re.M)[1])
    best_scores = [s for s, (_, p) in zip(scores, candidates) if ast.literal_eval(p) == best]
    assert best_scores == [max(scores)]


def test_multivariate_series():
    out = _run("multivariate_series.py")
    accuracies = [float(a) for a in re.findall(r"accuracy ([\d.]+)", out)]
    assert len(accuracies) == 3
    # Nine classes (chance 0.11): even the quick run separates them well.
    assert min(accuracies) > 0.6
