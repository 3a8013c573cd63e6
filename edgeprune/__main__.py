from edgeprune.cli import entry_point

entry_point()
