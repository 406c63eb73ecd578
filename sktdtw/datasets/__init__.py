"""Synthetic data sets for temporal classification."""

from ._temporal_order import make_temporal_order
from ._transients import make_transients
from ._videos import make_action_videos

__all__ = ["make_action_videos", "make_temporal_order", "make_transients"]
