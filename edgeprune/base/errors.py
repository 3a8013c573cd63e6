"""The one exception type the command line turns into a clean one-line error."""


class EdgepruneError(Exception):
    """A problem with the user's input (a file, a name, a shape), not a bug.

    The message must name the offending file or value and the problem in one line; the CLI
    prints it as ``edgeprune: error: <message>`` and exits non-zero, without a traceback.
    """
