"""Where the bi-level recipe's defaults come from: one knob at a time around them.

    python benchmarks/prune_recipe.py [--iters 60] [--target 0.6] [--seeds 0 1]

From the ablation's supernet (``pruning_harness``, same cache, same validation images), prune
with the bi-level method at one MACs target (the whole network prunable), moving one setting
of the recipe away from its default while the others stay: the weight lr as a fraction of the checkpoint's training lr,
``rho`` (the implicit term's weight, which sets lambda), the share of the iterations spent
searching, and the share of the search over which the target ramps down. Prints mIoU mean
+- std per point beside the default's, writes JSON. Resumes from the harness's cache.
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
from edgeprune.pruning.prune import PruneConfig  # noqa: E402
from edgeprune.pruning.weight_recipe import DEFAULT_LR_FRACTION  # noqa: E402

DEFAULT_JSON = REPO / "benchmarks" / "results" / "prune_recipe.json"
DEFAULTS = PruneConfig(model="", data="", out=Path(), target_gmacs=0.0)
# Each knob's values; the default is among them, so each row reads against the same runs.
KNOBS = {
    "lr_fraction": [0.1, DEFAULT_LR_FRACTION, 1.0],
    "rho": [0.3, DEFAULTS.rho, 3.0],
    "search_fraction": [0.3, DEFAULTS.search_fraction, 0.8],
    "ramp_fraction": [0.3, DEFAULTS.ramp_fraction, 1.0],
}
DEFAULT_POINT = {"lr_fraction": DEFAULT_LR_FRACTION, "rho": DEFAULTS.rho,
                 "search_fraction": DEFAULTS.search_fraction, "ramp_fraction": DEFAULTS.ramp_fraction}


def settings_for(point: dict[str, float], train_lr: float) -> dict[str, float]:
    """``PruneConfig`` fields for ``point``: defaults stay unset so they share the ablation's cached runs."""
    fields = {}
    for knob, value in point.items():
        if value == DEFAULT_POINT[knob]:
            continue
        if knob == "lr_fraction":
            fields["lr"] = value * train_lr
        else:
            fields[knob] = value
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=60, help="bi-level iterations per run")
    parser.add_argument("--target", type=float, default=0.6, help="fraction of the unpruned MACs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--val-images", type=int, default=200)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    checkpoint = ensure_trained(args.work, Supernet())
    harness = Harness(args.work, checkpoint, args.val_images)
    train_lr = float(harness.report["config"]["lr"])
    print(f"bi-level, {args.iters} iterations, target {args.target:.0%} of the MACs, seeds {args.seeds}; "
          f"unpruned mIoU {100 * harness.unpruned_miou:.2f}%", flush=True)

    def measure(point: dict[str, float]) -> dict[str, float]:
        runs = [harness.run({"target_fraction": args.target, "iters": args.iters, "seed": seed, "method": "bilevel",
                             "implicit": True, "layers": WHOLE_NETWORK, **settings_for(point, train_lr)})
                for seed in args.seeds]
        mious = [100 * r["miou"] for r in runs]
        return {"miou_mean": statistics.mean(mious), "miou_std": statistics.stdev(mious) if len(mious) > 1 else 0.0,
                "mious": mious, "lam": runs[0]["lam"]}

    default = measure(DEFAULT_POINT)
    print(f"  default {DEFAULT_POINT}: {default['miou_mean']:.2f} +- {default['miou_std']:.2f}")
    sweep: dict[str, list[dict]] = {}
    for knob, values in KNOBS.items():
        sweep[knob] = []
        for value in values:
            figures = default if value == DEFAULT_POINT[knob] else measure({**DEFAULT_POINT, knob: value})
            sweep[knob].append({"value": value, **figures})
            mark = "  (default)" if value == DEFAULT_POINT[knob] else ""
            print(f"  {knob:<16} {value:>6g}: {figures['miou_mean']:6.2f} +- {figures['miou_std']:.2f} "
                  f"({figures['miou_mean'] - default['miou_mean']:+.2f} vs default){mark}", flush=True)
    write_json(args.json, {"benchmark": "prune_recipe", "from": str(checkpoint), "target_fraction": args.target,
                           "iters": args.iters, "seeds": args.seeds, "val_images": args.val_images,
                           "unpruned_miou": harness.unpruned_miou, "default": {**DEFAULT_POINT, **default},
                           "sweep": sweep, "threads": torch.get_num_threads()})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
