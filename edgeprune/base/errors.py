"""The one exception type the command line turns into a clean one-line error."""


class EdgepruneError(Exception):
    """A problem with the user's input (a file, a name, a shape), not a bug.

    The message must name the offending file or value and the problem in one line; the CLI
    prints it as ``edgeprune: error: <message>`` and exits non-zero, without a traceback.
    """


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty):
    Python and ONNX put the summary first."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def last_line(exc: BaseException) -> str:
    """The last line of an exception's message (its type's name when the message is empty):
    TVM puts its C++ traceback first and the message last."""
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
