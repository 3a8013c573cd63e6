"""``tune_model``: the whole tuning job on a model, for the ``tune`` verb and for ``edgeprune demo``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.progress import Progress
from edgeprune.compiler.target import host_cores
from edgeprune.compiler.targets import device_type, resolve_target
from edgeprune.compiler.tuner.log import exclusive
from edgeprune.compiler.tuner.measure import Measurer
from edgeprune.compiler.tuner.session import TuneReport, TuneSession
from edgeprune.compiler.tuner.tasks import model_tasks, select_tasks
from edgeprune.device.runners.kernels import TimingPlan
from edgeprune.device.spec import DeviceSpec


@dataclass
class TuneJob:
    """What to tune and how: the options of ``edgeprune tune``."""

    src: str | os.PathLike[str]
    log: str | os.PathLike[str]
    trials: int
    target: str = "host"
    targets_file: str | os.PathLike[str] | None = None
    device: str = "local"
    workloads: Sequence[str] | None = None
    heaviest: int | None = None  # only the N workloads with the most FLOPs over all their calls
    resume: bool = False
    strategy: str = "ga"
    seed: int = 0
    builders: int | None = None
    timeout: float = 60.0
    plan: TimingPlan | None = None
    confirm_top: int = 3
    confirm_rounds: int = 3
    input_shape: Sequence[int] | None = None
    sparse: float | None = None  # also tune the sparse kernels of convs at least this sparse


def tune_model(job: TuneJob, should_stop: Callable[[], bool] = lambda: False,
               announce: Callable[[str], None] = print) -> TuneReport:
    """Tune every selected workload of ``job.src``; every measured candidate lands in ``job.log``.

    ``should_stop`` is polled between batches (a deferred Ctrl-C); the report says whether the
    run was interrupted, and the same job with ``resume=True`` continues it.
    """
    log = os.fspath(job.log)
    device = DeviceSpec.parse(job.device)
    if os.path.isdir(log):
        raise EdgepruneError(f"{log}: is a directory, not a tuning log")
    with exclusive(log):
        if os.path.getsize(log) > 0 and not job.resume:
            raise EdgepruneError(f"{log}: already holds tuning records; pass --resume to continue it, or choose another --log")
        return _tune_locked(job, device, log, should_stop, announce)


def _tune_locked(job: TuneJob, device: DeviceSpec, log: str, should_stop: Callable[[], bool],
                 announce: Callable[[str], None]) -> TuneReport:
    target = resolve_target(job.target, job.targets_file)
    if device_type(target) != "cpu":
        raise EdgepruneError(f"--target {job.target}: a GPU target; edgeprune tunes the CPU schedules only")
    all_tasks = model_tasks(job.src, target, job.input_shape, job.sparse)
    tasks = select_tasks(all_tasks, job.workloads)
    if job.heaviest:
        tasks = sorted(tasks, key=lambda t: -(t.flops or 0.0) * t.calls)[:job.heaviest]
    if not tasks:
        ops = sorted({t.workload.op for t in all_tasks})
        raise EdgepruneError(f"--workloads {','.join(job.workloads or [])!r} matches none of the model's workloads "
                             f"(ops: {', '.join(ops)})")
    announce(f"{job.src}: {len(tasks)} workloads to tune ({sum(t.calls for t in tasks)} kernel calls), "
             f"{job.trials} trials, {job.strategy} on {job.device}")
    measurer = Measurer(device, job.plan or TimingPlan(), target, job.builders or host_cores(), job.timeout, job.timeout)
    try:
        session = TuneSession(tasks, target, measurer, log, job.strategy, job.seed, batch_hook=should_stop,
                              confirm_top=job.confirm_top, confirm_rounds=job.confirm_rounds)
        total = max(job.trials, len(tasks), session.done)
        with Progress(total, "tune", initial=session.done, interval_s=10.0) as progress:
            return session.run(job.trials, progress)
    finally:
        measurer.close()
