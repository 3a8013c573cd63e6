"""Channel groups: which output channels of a conv net are pruned together, and how.

Pruning removes output channels of convs (and linears). Channels tied together must share
one mask and be removed together: a conv and the BatchNorm after it, a depth-wise conv
(its output channel ``c`` is its input channel ``c``), the two branches of a residual add,
the operands of an elementwise mul. A concat feeds each part to a later layer at an offset
of its input channels. ``analyze`` finds these *channel groups* on the model's
``torch.fx`` graph and reports, for each group, where the mask goes and everything the
slicer must cut, plus one ``ConvSite`` per conv/linear for the differentiable MACs count.

Modules, each importing only those above it: ``graph`` (the result dataclasses),
``fx_utils``, ``ops`` (op tables, zero-keeping predicates), ``segments`` (channel layouts),
``running``, ``macs``, ``flow`` (the fx analysis), ``torch_pruning_check``, ``fallback``
and ``analysis`` (``analyze``, ``default_prunable``, ``check_layer_names``).
"""

from edgeprune.pruning.coupling.analysis import analyze, check_layer_names, default_prunable
from edgeprune.pruning.coupling.graph import ChannelGraph, ChannelGroup, Consumer, ConvSite

__all__ = [
    "ChannelGraph",
    "ChannelGroup",
    "Consumer",
    "ConvSite",
    "analyze",
    "check_layer_names",
    "default_prunable",
]
