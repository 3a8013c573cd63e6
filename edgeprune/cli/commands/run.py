"""``edgeprune run``: run a compiled artifact on an input saved with ``numpy.save``."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.cli.commands.args import output_file


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run a compiled artifact on a .npy input")
    parser.add_argument("artifact", type=Path, help="artifact directory written by 'edgeprune compile'")
    parser.add_argument("--input", type=Path, required=True, help=".npy file with the input tensor")
    parser.add_argument("--output", type=output_file, required=True, help=".npy file to write the output to")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from edgeprune.base.errors import EdgepruneError
    from edgeprune.base.fileio import atomic_path
    from edgeprune.compiler import load_artifact

    artifact = load_artifact(args.artifact)
    try:
        x = np.load(args.input, allow_pickle=False)
    except OSError as exc:
        raise EdgepruneError(f"{args.input}: cannot be read ({exc.strerror or exc})") from exc
    except ValueError as exc:  # numpy's own text suggests allow_pickle=True, which would run the file's code
        raise EdgepruneError(f"{args.input}: not a .npy array file (edgeprune loads no pickled objects)") from exc
    y = artifact(x)
    outputs = y if isinstance(y, tuple) else (y,)
    with atomic_path(args.output) as tmp:
        with open(tmp, "wb") as f:
            if len(outputs) == 1:
                np.save(f, outputs[0])
            else:
                np.savez(f, **{spec.name: arr for spec, arr in zip(artifact.outputs, outputs)})
    print(f"wrote {args.output} ({', '.join(f'{s.name} {list(a.shape)}' for s, a in zip(artifact.outputs, outputs))})")
    return 0
