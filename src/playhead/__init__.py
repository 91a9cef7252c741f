"""playhead: real-time machine-learning video effects, rendered just ahead of the playhead."""

__version__ = "0.1.0"
