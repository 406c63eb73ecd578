"""sktdtw: DejaVid — learned weighted DTW over temporal sequences of embeddings."""

import importlib
import os

__version__ = "0.1.0"

# OpenMP threads (PyTorch's and the kernels' share one runtime) that spin while they wait
# make a fit beside another job 1.5x slower than one thread; sleeping ones cost nothing
# measurable on an idle machine (benchmarks/bench_contention.py). The runtime reads this
# once, when it loads, so it takes effect when sktdtw is imported before torch; a setting
# of the user's own wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Imported on first use (PEP 562), so that ``sktdtw --help`` and ``import sktdtw`` do not
# load PyTorch and scikit-learn before they are needed.
_LAZY = {
    "DBAInitializer": "._dba",
    "DejaVidClassifier": "._classifier",
    "TSESlidingEncoder": "._sliding_encoder",
    "dba_barycenter": "._dba",
    "datasets": ".datasets",
    "dtw": ".dtw",
    "io": ".io",
}

__all__ = [
    "DBAInitializer",
    "DejaVidClassifier",
    "TSESlidingEncoder",
    "datasets",
    "dba_barycenter",
    "dtw",
    "io",
    "__version__",
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = module if _LAZY[name] == "." + name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
