"""Pruning frontend: segmentation models, data, training, pruning and channel slicing.

Knows nothing of TVM; its output is the checkpoint directory (see ``pruning.checkpoint``).
"""
