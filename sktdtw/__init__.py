"""sktdtw: DejaVid — learned weighted DTW over temporal sequences of embeddings."""

import importlib

__version__ = "0.1.0"

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
