"""edgeprune: from a PyTorch segmentation checkpoint to a measured frame rate on a phone.

The packages do one stage each: ``pruning`` (models, data, training, pruning, slicing),
``compiler`` (TVM import, fusion, schedules, build), ``device`` (targets, runners, stats).
This package holds only the command line and what every stage shares.
"""

__version__ = "0.1.0"
