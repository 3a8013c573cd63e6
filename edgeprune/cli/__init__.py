"""The ``edgeprune`` command: one verb per stage, each a thin layer over the Python API.

Every verb lives in ``edgeprune/cli/commands/<verb>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``. User errors (``EdgepruneError``) become one line on stderr and exit
code 2; an interrupt exits 130 after the verb has saved what it can, also when TVM turned
the interrupt into another exception.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from edgeprune import __version__
from edgeprune.base.errors import EdgepruneError
from edgeprune.base.interrupt import remembered_interrupt
from edgeprune.cli.commands import VERBS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeprune",
        description="Prune segmentation networks, compile them with TVM, measure them on phones.",
    )
    parser.add_argument("--version", action="version", version=f"edgeprune {__version__}")
    subparsers = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in VERBS:
        verb.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with remembered_interrupt() as interrupt:
        try:
            return int(args.run(args) or 0)
        except EdgepruneError as exc:
            if not interrupt.requested:
                print(f"edgeprune: error: {exc}", file=sys.stderr)
                return 2
        except KeyboardInterrupt:
            pass
        except Exception:
            if not interrupt.requested:  # a bug, not the user's Ctrl-C: the traceback is wanted
                raise
    print("edgeprune: interrupted", file=sys.stderr)
    return 130


def entry_point() -> None:
    """The console command: ``main`` on ``sys.argv``, then exit with its code.

    After an interrupt the process ends without the interpreter's teardown: a TVM RPC session
    interrupted mid-call can abort in its C++ destructors ("terminate called without an active
    exception", exit -6 instead of 130). What the verb saved is already on disk by then.
    """
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry_point()
