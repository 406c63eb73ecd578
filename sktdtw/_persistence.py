"""The sktdtw version in every pickled estimator, checked when it is unpickled.

As scikit-learn does for its own estimators (whose ``_sklearn_version`` it records only
for classes of its own modules), an estimator of sktdtw pickled (``joblib.dump``) by one
version and loaded by another warns: its attributes may mean something else there, and
its results differ. Unpickling itself runs whatever code the file names, so models are to
be loaded only from trusted sources.
"""

import warnings

from sklearn.exceptions import InconsistentVersionWarning

__all__ = ["SktdtwVersionWarning", "VersionedPickleMixin"]

_KEY = "_sktdtw_version"
# The version of a pickle written before versions were recorded.
_UNRECORDED = "unrecorded"


class SktdtwVersionWarning(InconsistentVersionWarning):
    """An sktdtw estimator was unpickled by another sktdtw version than the one that saved
    it (a scikit-learn ``InconsistentVersionWarning``, so filters for it apply)."""

    def __str__(self):
        saved, current = self.original_sklearn_version, self.current_sklearn_version
        by = ("an sktdtw that did not record its version" if saved == _UNRECORDED
              else f"sktdtw {saved}")
        return (
            f"{self.estimator_name} was saved by {by} and is loaded by sktdtw {current}: it "
            f"may fail or give other results; refit it with sktdtw {current}"
            + ("" if saved == _UNRECORDED else f", or load it with sktdtw {saved}")
        )


class VersionedPickleMixin:
    """Record the sktdtw version in the pickled state; warn when it is not this one."""

    def __getstate__(self):
        from . import __version__

        return dict(super().__getstate__(), **{_KEY: __version__})

    def __setstate__(self, state):
        from . import __version__

        state = dict(state)
        saved = state.pop(_KEY, _UNRECORDED)
        if saved != __version__:
            warnings.warn(SktdtwVersionWarning(
                estimator_name=type(self).__name__, current_sklearn_version=__version__,
                original_sklearn_version=saved,
            ), stacklevel=2)
        super().__setstate__(state)
