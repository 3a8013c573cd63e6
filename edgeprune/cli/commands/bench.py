"""``edgeprune bench``: latency statistics and FPS of a compiled artifact."""

from __future__ import annotations

import argparse
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
    from edgeprune.device.runners import Measurement


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
    parser.add_argument("--fail-above", type=float_in(1.0, 100.0, low_open=True), metavar="RATIO",
                        help="exit 3 if significantly slower than the baseline by this median ratio (e.g. 1.05)")
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
    if args.fail_above is not None and not args.baseline:
        raise EdgepruneError(f"--fail-above {args.fail_above:g}: needs --baseline")
    if args.no_history and args.baseline:
        raise EdgepruneError("--baseline compares with the history: it cannot go with --no-history")
    history = args.history or default_history_path()
    if not args.no_history:
        History(history).close()  # a bad history file fails now, not after the measurement
    device = DeviceSpec.parse(args.device)
    if device.is_local:
        check_threads_here(args.threads)
    runner = device.runner(timeout_s=args.timeout_s, priority=args.priority)
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


def _print_table(artifact: Path, result: "Measurement") -> None:
    s = result.stats
    threads = result.threads or "device-default"
    print(f"{artifact} on {result.device}, {threads} threads, {s.runs} runs{' (partial)' if result.partial else ''}")
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
