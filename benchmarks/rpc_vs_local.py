"""The RPC runner against the local one, on the same artifact and the same CPU.

    python benchmarks/rpc_vs_local.py [--model topformer-tiny] [--size 256] [--rounds 5] [--runs 30]
                                      [--threads 1] [--json benchmarks/results/rpc_vs_local.json]

The model (seeded random weights; latency does not depend on them) is compiled for this CPU and
measured by ``--device local`` and by ``--device rpc://127.0.0.1:PORT/bench`` (TVM's own tracker
and server started here), alternately, ``--rounds`` times each with ``--runs`` timed runs. Both
runners time on the device with TVM's ``time_evaluator`` and only timings travel back, so the
medians should agree: rpc / local shows what RPC adds to the timed runs. Also reported is the
wall time of one whole ``measure`` call (for RPC: device request, upload, load, first run,
warm-up, runs): the price of one bench through the farm.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from edgeprune import compiler
from edgeprune.base.fileio import write_json
from edgeprune.base.timing import alternate_timers, wall_clock
from edgeprune.device.runners.localfarm import LocalFarm
from edgeprune.device.spec import DeviceSpec

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "rpc_vs_local.json"


def checkpoint(name: str, size: int, out: Path) -> Path:
    from edgeprune.pruning.checkpoint import ArchInfo, save_checkpoint
    from edgeprune.pruning.models import build_model

    torch.manual_seed(0)
    model = build_model(name).eval()
    arch = ArchInfo(model=name, num_classes=model.edgeprune_config.get("num_classes") or 1,
                    input_shape=[1, 3, size, size], mean=[0.0] * 3, std=[1.0] * 3, config=model.edgeprune_config)
    return save_checkpoint(out, model, arch, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="topformer-tiny")
    parser.add_argument("--size", type=int, default=256, help="input height and width (default 256)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per round and runner")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, LocalFarm(Path(tmp)) as farm:
        art = compiler.compile(checkpoint(args.model, args.size, Path(tmp) / "ckpt"), out=Path(tmp) / "art")
        farm.server("bench")
        runners = {"local": DeviceSpec.parse("local").runner(), "rpc": DeviceSpec.parse(str(farm.address("bench"))).runner()}
        timings: dict[str, list[float]] = {name: [] for name in runners}

        def measured(name: str) -> Callable[[], float]:
            """One ``measure()`` of the runner, its timed runs kept; returns its wall time (ms)."""
            def run() -> None:
                timings[name].extend(runners[name].measure(art, runs=args.runs, warmup=3, threads=args.threads).stats.timings_ms)
            return wall_clock(run)

        walls = alternate_timers({name: measured(name) for name in runners}, args.rounds)

    rows = {name: {"median_ms": statistics.median(t), "min_ms": min(t), "runs": len(t),
                   "measure_wall_s": statistics.median(walls[name]) / 1e3} for name, t in timings.items()}
    ratio = rows["rpc"]["median_ms"] / rows["local"]["median_ms"]
    print(f"{args.model} {args.size}x{args.size}, {args.threads} thread(s), {args.rounds} rounds x {args.runs} runs, "
          f"alternating, on {platform.processor() or platform.machine()}")
    print(f"{'runner':<8} {'median ms':>10} {'min ms':>9} {'runs':>6} {'measure() wall s':>17}")
    for name, row in rows.items():
        print(f"{name:<8} {row['median_ms']:>10.3f} {row['min_ms']:>9.3f} {row['runs']:>6} {row['measure_wall_s']:>17.2f}")
    print(f"rpc / local median: {ratio:.3f}")
    write_json(args.json, {"model": args.model, "size": args.size, "threads": args.threads, "rounds": args.rounds,
                           "runs": args.runs, "runners": rows, "rpc_over_local_median": ratio,
                           "timings_ms": timings, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
