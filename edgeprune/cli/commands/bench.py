"""``edgeprune bench``: latency statistics and FPS of a compiled artifact, or of two timed A/B."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from edgeprune.cli.commands.args import (
    THREADS,
    check_threads_here,
    float_in,
    int_in,
    output_file,
)

if TYPE_CHECKING:
    from edgeprune.device.runners import Measurement, Runner
    from edgeprune.device.spec import DeviceSpec


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="time an artifact: latency statistics and FPS")
    parser.add_argument("artifact", type=Path, help="artifact directory written by 'edgeprune compile'")
    parser.add_argument("--device", default="local",
                        help="local (this CPU) or rpc://HOST:PORT/KEY (a device under KEY at a TVM RPC tracker)")
    parser.add_argument("--runs", type=int_in(1, 1_000_000), default=50, help="timed runs, at least (default 50)")
    parser.add_argument("--min-time-s", type=float_in(0.0, 3600.0), default=0.0,
                        help="keep timing until this many seconds of timed runs too (default 0)")
    parser.add_argument("--warmup", type=int_in(0, 100_000), default=5, help="untimed runs first (default 5)")
    parser.add_argument("--number", type=int_in(1, 100_000), default=1,
                        help="calls averaged into each timed run, for sub-millisecond models (default 1)")
    parser.add_argument("--threads", type=THREADS,
                        help="CPU threads (default: TVM_NUM_THREADS or all cores here; the device's default over RPC)")
    parser.add_argument("--timeout-s", type=float_in(0.0, 86_400.0, low_open=True), default=60.0,
                        help="rpc: longest wait for the tracker, a free device, and each answer of the device (default 60)")
    parser.add_argument("--priority", type=int_in(0, 1000), default=1, help="rpc: priority of the device request (default 1)")
    parser.add_argument("--json", type=output_file, help="also write the statistics here")
    parser.add_argument("--history", type=Path, help="results history to append the run to "
                        "(SQLite; default $XDG_CACHE_HOME/edgeprune/history.sqlite)")
    parser.add_argument("--no-history", action="store_true", help="do not record the run")
    parser.add_argument("--model", help="name the history files the run under (default: the artifact directory's name)")
    parser.add_argument("--baseline", metavar="REF", help="compare with run:ID, commit:SHA, best:N (of the last N) or last")
    parser.add_argument("--against", type=Path, metavar="OLD",
                        help="A/B: time ARTIFACT (NEW) and this artifact in alternating rounds on the device and "
                             "compare them round by round (what a shared or loaded machine needs)")
    parser.add_argument("--rounds", type=int_in(1, 100_000), default=40,
                        help="A/B: alternating rounds, at least (default 40; a 99%% interval needs 8 or more); "
                             "--runs are spread over them")
    parser.add_argument("--no-kernels", action="store_true",
                        help="A/B: skip the per-kernel comparison (local device only) that names the kernels that changed")
    parser.add_argument("--fail-above", type=float_in(1.0, 100.0, low_open=True), metavar="RATIO",
                        help="exit 3 if significantly slower than the baseline (or OLD) by this median ratio (e.g. 1.05)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.base.errors import EdgepruneError
    from edgeprune.base.fileio import write_json
    from edgeprune.device.history import History, default_history_path, parse_ref, run_from_measurement
    from edgeprune.device.regression import record_and_compare
    from edgeprune.device.runners import MeasurementFailed, MeasurementInterrupted
    from edgeprune.device.spec import DeviceSpec

    if args.baseline:
        parse_ref(args.baseline)
    if args.against is not None and args.baseline:
        raise EdgepruneError("--against times OLD now and --baseline compares with a stored run: give one of them")
    if args.against is not None:
        from edgeprune.compiler.artifact import read_meta
        from edgeprune.device.paired import min_rounds

        if args.rounds < min_rounds():
            raise EdgepruneError(f"--rounds {args.rounds}: a 99% interval on the median ratio needs at least {min_rounds()}")
        read_meta(args.against)  # a bad OLD fails now, not after timing NEW
    if args.fail_above is not None and not (args.baseline or args.against):
        raise EdgepruneError(f"--fail-above {args.fail_above:g}: needs --baseline or --against")
    if args.no_history and args.baseline:
        raise EdgepruneError("--baseline compares with the history: it cannot go with --no-history")
    history = args.history or default_history_path()
    if not args.no_history:
        History(history).close()  # a bad history file fails now, not after the measurement
    device = DeviceSpec.parse(args.device)
    if device.is_local:
        check_threads_here(args.threads)
    runner = device.runner(timeout_s=args.timeout_s, priority=args.priority)
    if args.against is not None:
        return _run_ab(args, device, runner, None if args.no_history else history)
    try:
        with _ChunkProgress(f"bench {args.device}") as progress:
            result = runner.measure(args.artifact, runs=args.runs, warmup=args.warmup, number=args.number,
                                    min_time_s=args.min_time_s, threads=args.threads, on_chunk=progress)
    except (MeasurementFailed, MeasurementInterrupted) as exc:
        # keep what was measured; the history records complete runs only
        _print_table(args.artifact, exc.partial)
        if args.json:
            write_json(args.json, exc.partial.to_json())
            print(f"wrote {args.json} (partial: {exc.partial.stats.runs} timed runs)")
        raise
    _print_table(args.artifact, result)
    report = result.to_json()
    if args.json:  # kept whatever happens to the history below
        write_json(args.json, report)
    gate = None
    if not args.no_history:
        entry = run_from_measurement(result, args.artifact, args.device, args.model)
        gate = record_and_compare(history, entry, args.baseline, args.fail_above)
        print("\n".join(gate.lines(args.baseline)))
        report["history_run"] = gate.run.id
        if gate.comparison:
            report["comparison"] = {**gate.comparison.to_json(), "baseline_run": gate.baseline.id}
        if args.json:
            write_json(args.json, report)
    if args.json:
        print(f"wrote {args.json}")
    return 3 if gate and gate.failed else 0


def _run_ab(args: argparse.Namespace, device: "DeviceSpec", runner: "Runner", history: Path | None) -> int:
    """``bench NEW --against OLD``: both timed in alternating rounds, decided on paired rounds."""
    from edgeprune.base.fileio import write_json
    from edgeprune.compiler.artifact import read_meta
    from edgeprune.device.ab import RoundPlan, measure_ab
    from edgeprune.device.history import History, run_from_measurement
    from edgeprune.device.kernel_diff import kernel_diff
    from edgeprune.device.regression import SLOWER, THRESHOLD

    new, old = args.artifact, args.against
    new_inputs, old_inputs = ([(s.shape, s.dtype) for s in read_meta(path).inputs] for path in (new, old))
    threshold = args.fail_above or THRESHOLD
    plan = RoundPlan(rounds=args.rounds, per_round=math.ceil(args.runs / args.rounds), warmup=args.warmup,
                     number=args.number, min_time_s=args.min_time_s)
    with _ChunkProgress(f"A/B {args.device}") as progress:
        result = measure_ab(runner, new, old, threshold, plan, args.threads, on_round=progress)
    _print_table(old, result.old, "OLD ")
    _print_table(new, result.new, "NEW ")
    if new_inputs != old_inputs:
        print(f"note: NEW takes {new_inputs} and OLD {old_inputs}")
    comparison = result.comparison
    print(f"A/B, {plan.per_round} run(s) of each per round: {comparison.describe()}")
    report = result.to_json()
    kernels = None
    if args.no_kernels:
        pass
    elif device.is_local:
        with _ChunkProgress("kernels") as progress:
            kernels = kernel_diff(new, old, threshold, rounds=args.rounds, threads=args.threads, on_round=progress)
        print("\n".join(kernels.lines()))
        report["kernels"] = kernels.to_json()
    else:
        print("kernels: not compared (the per-kernel profile runs on this machine only: --device local)")
    if args.json:  # kept whatever happens to the history below
        write_json(args.json, report)
    if history is not None:
        model = args.model or new.resolve().name  # one model: NEW and OLD are two builds of it
        detail = {**comparison.to_json(), "kernels_changed": [k.to_json() for k in kernels.changed] if kernels else None}
        with History(history) as h:
            recorded = h.record_comparison(run_from_measurement(result.new, new, args.device, model),
                                           run_from_measurement(result.old, old, args.device, model), detail)
        print(f"recorded A/B comparison #{recorded.id}: NEW {recorded.new.label()}, OLD run #{recorded.old.id}")
        report["history_comparison"] = recorded.id
        report["history_runs"] = {"new": recorded.new.id, "old": recorded.old.id}
        if args.json:
            write_json(args.json, report)
    if args.json:
        print(f"wrote {args.json}")
    failed = args.fail_above is not None and comparison.verdict == SLOWER
    if failed:
        print(f"REGRESSION: NEW is {comparison.ratio:.3f}x OLD, beyond --fail-above {args.fail_above:g}")
    return 3 if failed else 0


def _print_table(artifact: Path, result: "Measurement", label: str = "") -> None:
    s = result.stats
    threads = result.threads or "device-default"
    print(f"{label}{artifact} on {result.device}, {threads} threads, {s.runs} runs{' (partial)' if result.partial else ''}")
    print(f"{'first':>9} {'mean':>9} {'std':>8} {'min':>9} {'median':>9} {'p90':>9} {'p95':>9} {'max':>9} {'FPS':>8}")
    print(f"{s.first_ms:>9.3f} {s.mean_ms:>9.3f} {s.std_ms:>8.3f} {s.min_ms:>9.3f} {s.median_ms:>9.3f} "
          f"{s.p90_ms:>9.3f} {s.p95_ms:>9.3f} {s.max_ms:>9.3f} {s.fps:>8.1f}   (ms)")


class _ChunkProgress:
    """``on_chunk`` for ``Runner.measure``: a Progress over the runs expected, made at the first chunk."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.progress = None

    def __call__(self, done: int, expected: int) -> None:
        from edgeprune.base.progress import Progress

        if self.progress is None:
            self.progress = Progress(total=expected, desc=self.desc)
        self.progress.update(done - self.progress.done)

    def __enter__(self) -> "_ChunkProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.close()
