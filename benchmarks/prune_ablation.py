"""The seed paper's ablation (Table 3) on data we can run here.

    python benchmarks/prune_ablation.py --from CKPT [--target-fraction 0.5] [--iters 60] [--seeds 0 1 2]

From one trained checkpoint (a TopFormer supernet trained on the synthetic scenes, e.g.
``edgeprune train --model topformer-supernet --data synthetic --crop-size 128 --input-size 128
--iters 1500 --lr 0.1 --out CKPT``), prune to the same MACs target with (a) bi-level with
implicit gradients, (b) bi-level without them (``--no-implicit``), (c) the L1 magnitude
baseline fine-tuned for the same number of weight updates; each with the same iteration
budget and several seeds. Prints mIoU mean +- std side by side with the unpruned model's,
the MACs reached, and the wall time of (a) over (b) (the paper: 1.3 vs 1.1 GPU days), and
writes everything to JSON.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from edgeprune.base.fileio import write_json
from edgeprune.pruning.checkpoint import load_checkpoint
from edgeprune.pruning.data import build_dataset
from edgeprune.pruning.evaluate import evaluate
from edgeprune.pruning.prune import PruneConfig, prune

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "prune_ablation.json"
VARIANTS = {
    "bilevel (implicit)": dict(method="bilevel", implicit=True),
    "bilevel (no implicit)": dict(method="bilevel", implicit=False),
    "magnitude (L1)": dict(method="magnitude"),
}


def spread(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="from_dir", type=Path, required=True)
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--target-fraction", type=float, default=0.5, help="target as a fraction of the unpruned MACs")
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--val-images", type=int, default=100)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    ckpt = load_checkpoint(args.from_dir)
    shape = ckpt.arch.input_shape
    crop = (shape[2], shape[3])
    val = build_dataset(args.data, split="val", crop_size=crop)
    base_miou = evaluate(ckpt.model, val, ckpt.arch.num_classes, limit=args.val_images).miou()
    base_macs = ckpt.report.get("macs")
    target_gmacs = args.target_fraction * base_macs / 1e9
    print(f"unpruned {ckpt.arch.model}: {base_macs / 1e9:.3f} GMACs at {shape}, mIoU {100 * base_miou:.2f}%; "
          f"target {target_gmacs:.3f} GMACs, {args.iters} iterations, seeds {args.seeds}", flush=True)

    runs = []
    with tempfile.TemporaryDirectory() as work:
        for seed in args.seeds:
            for label, variant in VARIANTS.items():
                cfg = PruneConfig(model="", data=args.data, out=Path(work) / f"{label}-{seed}".replace(" ", "_"),
                                  target_gmacs=target_gmacs, from_dir=args.from_dir, iters=args.iters,
                                  crop_size=crop, input_size=crop, val_images=args.val_images, seed=seed,
                                  progress_interval_s=60, **variant)
                report = prune(cfg)
                runs.append({"variant": label, "seed": seed, "miou": report["miou"], "gmacs": report["macs"] / 1e9,
                             "target_error": report["target_error"], "seconds": report["seconds"],
                             "channels_flipped_by_fit": report["channels_flipped_by_fit"]})
                print(f"  {label:<22} seed {seed}: mIoU {100 * report['miou']:.2f}%, {report['macs'] / 1e9:.3f} GMACs, "
                      f"{report['seconds']:.0f} s", flush=True)

    summary = {}
    print(f"\n{'variant':<24} {'mIoU % (mean +- std)':>22} {'GMACs':>7} {'seconds':>9}")
    print(f"{'unpruned':<24} {100 * base_miou:>22.2f} {base_macs / 1e9:>7.3f} {'':>9}")
    for label in VARIANTS:
        mine = [r for r in runs if r["variant"] == label]
        miou_mean, miou_std = spread([100 * r["miou"] for r in mine])
        secs = statistics.mean(r["seconds"] for r in mine)
        gmacs = statistics.mean(r["gmacs"] for r in mine)
        summary[label] = {"miou_mean": miou_mean, "miou_std": miou_std, "seconds_mean": secs, "gmacs_mean": gmacs}
        print(f"{label:<24} {f'{miou_mean:.2f} +- {miou_std:.2f}':>22} {gmacs:>7.3f} {secs:>9.1f}")
    ratio = summary["bilevel (implicit)"]["seconds_mean"] / summary["bilevel (no implicit)"]["seconds_mean"]
    print(f"wall time, implicit / no implicit: {ratio:.2f}x (the paper: 1.3 / 1.1 = 1.18x)")
    write_json(args.json, {"benchmark": "prune_ablation", "from": str(args.from_dir), "input_shape": shape,
                           "unpruned": {"miou": base_miou, "gmacs": base_macs / 1e9},
                           "target_gmacs": target_gmacs, "iters": args.iters, "threads": torch.get_num_threads(),
                           "runs": runs, "summary": summary, "implicit_time_ratio": ratio})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
