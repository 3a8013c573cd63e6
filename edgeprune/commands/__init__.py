"""The CLI verbs, in the order ``edgeprune --help`` lists them."""

from edgeprune.commands import bench, compile, export, models, prune, run, train

VERBS = (models, train, prune, export, compile, run, bench)
