"""Params and MACs of every built-in model, counted here, beside the published figures.

    python benchmarks/model_zoo.py [--json benchmarks/results/model_zoo.json]

Each model is built with the published number of classes and counted by
``pruning.macs.count_cost`` (conv, linear and matmul MACs; one image) at the published input
size. The table goes to stdout, the same rows to JSON (written atomically).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from edgeprune.base.fileio import write_json
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.models import MODELS, build_model

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "model_zoo.json"


def measure(name: str) -> dict:
    """One row: the model's measured params/GMACs, the published ones and their ratios."""
    spec = MODELS[name]
    pub = spec.published
    h, w = pub.input_hw if pub else spec.input_hw
    cost = count_cost(build_model(name, num_classes=pub.num_classes if pub else None), (1, 3, h, w))
    row = {
        "model": name,
        "input_hw": [h, w],
        "params_m": round(cost.params_m, 4),
        "gmacs": round(cost.gmacs, 4),
        "macs_by_kind": cost.by_kind(),
        "published_params_m": pub.params_m if pub else None,
        "published_gmacs": pub.gmacs if pub else None,
        "params_ratio": round(cost.params_m / pub.params_m, 4) if pub else None,
        "gmacs_ratio": round(cost.gmacs / pub.gmacs, 4) if pub else None,
        "source": pub.source if pub else None,
    }
    return row


def format_table(rows: list[dict]) -> str:
    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [f"{'model':<20} {'input':>9} {'params M':>9} {'pub.':>6} {'ratio':>6} "
             f"{'GMACs':>7} {'pub.':>6} {'ratio':>6}"]
    for row in rows:
        h, w = row["input_hw"]
        lines.append(
            f"{row['model']:<20} {f'{h}x{w}':>9} {row['params_m']:>9.3f} {number(row['published_params_m'], '.2f'):>6} "
            f"{number(row['params_ratio'], '.3f'):>6} {row['gmacs']:>7.3f} {number(row['published_gmacs'], '.2f'):>6} "
            f"{number(row['gmacs_ratio'], '.3f'):>6}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"rows as JSON (default {DEFAULT_JSON})")
    args = parser.parse_args(argv)
    rows = [measure(name) for name in MODELS]
    print(format_table(rows))
    write_json(args.json, {
        "counted": "conv/linear/matmul MACs of one image (pruning.macs.count_cost); params = model.parameters()",
        "torch": torch.__version__,
        "rows": rows,
    })
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
