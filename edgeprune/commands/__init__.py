"""The CLI verbs, in the order ``edgeprune --help`` lists them."""

from edgeprune.commands import export, models, train

VERBS = (models, train, export)
