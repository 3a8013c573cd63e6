"""Does pruning hit its MACs target, and does PyTorch latency fall with the MACs?

    python benchmarks/prune_targets.py [--models topformer-supernet deeplabv3plus-mbv2] [--json PATH]

For each model at its deploy size and each target from 10% to 90% of its reachable MACs,
the L1 magnitude scores are fitted to the target (``pruning.fit_target``, the same last
step the bi-level method takes), the model is sliced, and the slice's MACs are counted
(target error; the goal is within 2%) and its PyTorch eager latency is measured beside
the unpruned model's, alternating the two, median of repeats, same threads. Prints the
latency ratio next to the MACs ratio and writes the rows to JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from edgeprune.base.fileio import write_json
from edgeprune.base.timing import alternate_timers, medians, wall_clock
from edgeprune.pruning.coupling import analyze, default_prunable
from edgeprune.pruning.fit_target import fit_to_target
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.magnitude import l1_scores
from edgeprune.pruning.models import MODELS, build_model
from edgeprune.pruning.regularizer import MacsModel
from edgeprune.pruning.slicing import slice_model

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "prune_targets.json"
FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)


def median_ms(models: list[torch.nn.Module], x: torch.Tensor, repeats: int) -> list[float]:
    """Median latency of each model, measured alternately so drift hits all alike."""
    with torch.inference_mode():
        times = alternate_timers({i: wall_clock(model, x) for i, model in enumerate(models)}, repeats, warmup=1)
    return list(medians(times).values())


def measure(name: str, repeats: int) -> list[dict]:
    spec = MODELS[name]
    shape = (1, 3, *spec.input_hw)
    torch.manual_seed(0)
    model = build_model(name).eval()
    graph = analyze(model, torch.zeros(shape), default_prunable(name))
    macs = MacsModel(graph, count_cost(model, shape).macs)
    full, low = macs.full_macs(), macs.min_macs()
    scores = l1_scores(model, graph)
    rows = []
    x = torch.randn(shape)
    for fraction in FRACTIONS:
        target = low + fraction * (full - low)
        keep = fit_to_target(scores, {g: torch.ones_like(s, dtype=torch.bool) for g, s in scores.items()}, macs, target)
        sliced = slice_model(model, graph, {g: torch.nonzero(k).flatten() for g, k in keep.items()}).eval()
        got = count_cost(sliced, shape).macs
        dense_ms, sliced_ms = median_ms([model, sliced], x, repeats)
        rows.append({
            "model": name, "input": list(shape), "fraction_of_reachable": fraction,
            "target_gmacs": target / 1e9, "gmacs": got / 1e9, "full_gmacs": full / 1e9,
            "target_error": (got - target) / target, "macs_ratio": got / full,
            "dense_ms": dense_ms, "sliced_ms": sliced_ms, "latency_ratio": sliced_ms / dense_ms,
            "threads": torch.get_num_threads(),
        })
        r = rows[-1]
        print(f"{name:<20} {r['target_gmacs']:>8.3f} {r['gmacs']:>8.3f} {100 * r['target_error']:>+7.2f}% "
              f"{r['macs_ratio']:>7.3f} {r['dense_ms']:>9.1f} {r['sliced_ms']:>9.1f} {r['latency_ratio']:>8.3f}",
              flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["topformer-supernet", "deeplabv3plus-mbv2"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    print(f"{'model':<20} {'target':>8} {'GMACs':>8} {'error':>8} {'MACs/x':>7} {'dense ms':>9} "
          f"{'sliced ms':>9} {'lat/x':>8}")
    rows = [row for name in args.models for row in measure(name, args.repeats)]
    write_json(args.json, {"benchmark": "prune_targets", "rows": rows})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
