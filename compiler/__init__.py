"""Compiler: TVM import, BatchNorm folding and fusion, schedules, build.

``compile(src, target="host", tuning_configs=None, out=ART)`` turns a checkpoint directory or
an ONNX file into an artifact directory; ``load_artifact(ART)`` gives a callable on numpy
arrays with a ``time(number, repeat)`` method.
"""

from edgeprune.compiler.artifact import Artifact, load_artifact
from edgeprune.compiler.build import compile

__all__ = ["Artifact", "compile", "load_artifact"]
