"""The seed paper's ablation (Table 3) against the baselines a user would pick, on data we can run here.

    python benchmarks/prune_ablation.py [--iters 60] [--targets 0.6 0.36] [--seeds 0 1 2]

From one converged TopFormer supernet (``pruning_harness``: trained here once, cached,
resumable), prune to each MACs target (the paper's Table A6 points: 60% and 36% of the MACs)
with every arm, the whole network prunable: bi-level with and without the implicit gradient,
bi-level with Eq. 5's push by channel cost instead of the even one, Torch-Pruning's magnitude,
Taylor and BN-scale criteria through its own pruner, and one uniform width factor. Every arm
starts from the same checkpoint, gets the same number of weight updates at the same lr
schedule, and is evaluated on the same validation images as the unpruned model. Prints mIoU
mean +- std over seeds, wall time and the widths each arm chose; checks that the budget is
large enough (one seed of the best arm rerun at twice the iterations); writes JSON.
Interrupted, it resumes from its cache of finished runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.pruning_harness import DEFAULT_WORK, WHOLE_NETWORK, Harness, Supernet, ensure_trained  # noqa: E402
from edgeprune.base.fileio import write_json  # noqa: E402

DEFAULT_JSON = REPO / "benchmarks" / "results" / "prune_ablation.json"
ARMS = {
    "bilevel (implicit)": {"method": "bilevel", "implicit": True},
    "bilevel (no implicit)": {"method": "bilevel", "implicit": False},
    "bilevel (implicit, Eq. 5 push)": {"method": "bilevel", "implicit": True, "push": "macs"},
    "Torch-Pruning magnitude": {"method": "magnitude"},
    "Torch-Pruning Taylor": {"method": "taylor"},
    "Torch-Pruning BN-scale": {"method": "bn-scale"},
    "uniform width": {"method": "uniform"},
}


def spread(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=60, help="bi-level iterations; every arm gets iters x 3 weight updates")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.6, 0.36], help="fractions of the unpruned MACs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--val-images", type=int, default=200)
    parser.add_argument("--no-budget-check", action="store_true", help="skip the rerun at twice the iterations")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    checkpoint = ensure_trained(args.work, Supernet())
    harness = Harness(args.work, checkpoint, args.val_images)
    macs = harness.report["macs"]
    print(f"unpruned {harness.arch.model}: {macs / 1e9:.3f} GMACs at {harness.arch.input_shape}, mIoU "
          f"{100 * harness.unpruned_miou:.2f}% on {len(harness.val_set) if args.val_images is None else args.val_images} "
          f"val images; {args.iters} iterations ({3 * args.iters} weight updates) per run, seeds {args.seeds}", flush=True)
    summary: dict[str, dict] = {}
    for target in args.targets:
        print(f"\ntarget {target:.0%} of the MACs ({target * macs / 1e9:.3f} GMACs)")
        print(f"  {'arm':<26} {'mIoU % (mean +- std)':>22} {'MACs %':>7} {'seconds':>8}")
        rows = {}
        for arm in args.arms:
            runs = [harness.run({"target_fraction": target, "iters": args.iters, "seed": seed, "layers": WHOLE_NETWORK,
                                 **ARMS[arm]})
                    for seed in args.seeds]
            mean, std = spread([100 * r["miou"] for r in runs])
            rows[arm] = {"miou_mean": mean, "miou_std": std, "mious": [100 * r["miou"] for r in runs],
                         "macs_fraction": statistics.mean(r["macs_fraction"] for r in runs),
                         "seconds_mean": statistics.mean(r["seconds"] for r in runs),
                         "widths_seed0": runs[0]["groups"], "lam": runs[0]["lam"]}
            print(f"  {arm:<26} {f'{mean:.2f} +- {std:.2f}':>22} {100 * rows[arm]['macs_fraction']:>7.1f} "
                  f"{rows[arm]['seconds_mean']:>8.0f}", flush=True)
        best = max(rows, key=lambda a: rows[a]["miou_mean"])
        print(f"  best: {best}; unpruned {100 * harness.unpruned_miou:.2f}%")
        budget = None
        if not args.no_budget_check:
            budget = {}
            for arm in sorted(rows, key=lambda a: -rows[a]["miou_mean"])[:1]:
                longer = harness.run({"target_fraction": target, "iters": 2 * args.iters, "seed": args.seeds[0],
                                      "layers": WHOLE_NETWORK, **ARMS[arm]})
                budget[arm] = {"miou_at_2x": 100 * longer["miou"], "miou_at_1x": rows[arm]["mious"][0]}
                print(f"  budget check, {arm}: seed {args.seeds[0]} at {2 * args.iters} iterations "
                      f"{100 * longer['miou']:.2f}% vs {rows[arm]['mious'][0]:.2f}% at {args.iters}", flush=True)
        summary[f"{target:g}"] = {"arms": rows, "best": best, "budget_check": budget}
    if "bilevel (implicit)" in args.arms and "bilevel (no implicit)" in args.arms:
        ratio = statistics.mean(summary[f"{t:g}"]["arms"]["bilevel (implicit)"]["seconds_mean"]
                                / summary[f"{t:g}"]["arms"]["bilevel (no implicit)"]["seconds_mean"] for t in args.targets)
        print(f"\nwall time, implicit / no implicit: {ratio:.2f}x (the paper: 1.3 / 1.1 GPU days = 1.18x)")
    write_json(args.json, {"benchmark": "prune_ablation", "from": str(checkpoint), "input_shape": harness.arch.input_shape,
                           "unpruned": {"miou": harness.unpruned_miou, "gmacs": macs / 1e9}, "iters": args.iters,
                           "weight_updates": 3 * args.iters, "seeds": args.seeds, "val_images": args.val_images,
                           "threads": torch.get_num_threads(), "targets": summary})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
