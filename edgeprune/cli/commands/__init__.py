"""The CLI verbs, in the order ``edgeprune --help`` lists them."""

from edgeprune.cli.commands import bench, check, compile, demo, export, models, prune, report, run, targets, train, tune

VERBS = (demo, models, train, prune, export, targets, tune, compile, check, run, bench, report)
