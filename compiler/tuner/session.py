"""One tuning run over the tasks of a model: defaults first, the budget by weight, then search.

1. The default config of every task is measured (or found in the log); ``calls x default
   latency`` is the task's share of the model's time.
2. The trial budget (measured candidates, defaults included) is split in proportion to those
   shares, each task capped at its number of valid genes.
3. Each task, heaviest first, runs its strategy (seeded per workload) until its share is
   spent. Proposals the log already holds are answered from it without measuring, so a run
   resumed on its own log replays the interrupted search and continues from where it stopped.
4. The default and the ``confirm_top`` fastest candidates are re-timed side by side in
   ``confirm_rounds`` alternating rounds: on a shared machine one search-time measurement can
   be lucky, and the best of many trials is the luckiest. The median over the rounds decides.

Every measured candidate is appended to the log before the next batch starts.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeprune.base.progress import Progress
from edgeprune.compiler.schedules.base import Config
from edgeprune.compiler.tuner.ga import GeneticSearch
from edgeprune.compiler.tuner.log import CONFIRM, LogWriter, TuneRecord, read_log
from edgeprune.compiler.tuner.measure import Measurer
from edgeprune.compiler.tuner.random_search import RandomSearch
from edgeprune.compiler.tuner.space import Gene, SearchSpace
from edgeprune.compiler.tuner.strategy import Strategy
from edgeprune.compiler.tuner.tasks import Task

STRATEGIES: dict[str, Callable[[SearchSpace, int], Strategy]] = {
    "ga": lambda space, seed: GeneticSearch(space, seed),
    "random": lambda space, seed: RandomSearch(space, seed),
}


@dataclass
class TaskResult:
    task: Task
    default_ms: float = math.inf
    best_ms: float = math.inf
    best_knobs: Config | None = None
    trials: int = 0      # records of this workload in the log (this run and earlier ones)
    measured: int = 0    # of which measured by this run
    failures: int = 0
    first_error: str | None = None
    budget: int = 0
    history: list[float] = field(default_factory=list)  # cost per trial of this run, in order

    @property
    def weight(self) -> float:
        return self.default_ms * self.task.calls if math.isfinite(self.default_ms) else 0.0


@dataclass
class TuneReport:
    results: list[TaskResult]
    interrupted: bool
    torn_lines: int


def _cache_of(task: Task, records: list[TuneRecord]) -> dict[Gene, float]:
    """Costs the log holds for ``task`` by gene (records outside today's space are ignored)."""
    space, cache = task.space, {}
    for record in records:
        if record.workload != task.key:
            continue
        try:
            gene = space.gene(task.rule.check_config(task.workload, record.knobs))
        except ValueError:
            continue
        cache[gene] = min(cache.get(gene, math.inf), record.cost)
    return cache


def allocate(weights: list[float], floors: list[int], caps: list[int], total: int) -> list[int]:
    """Split ``total`` trials in proportion to ``weights``: at least ``floors``, at most ``caps``.

    Each task gets ``clamp(lam * weight, floor, cap)`` with the largest ``lam`` that fits the
    total (water-filling: a capped task's surplus goes to the others, and a task whose floor
    already exceeds its share takes no more); what rounding leaves goes to the heaviest.
    """
    low = [min(f, c) for f, c in zip(floors, caps)]

    def sized(lam: float) -> list[int]:
        return [max(lo, min(cap, math.floor(lam * w))) for lo, cap, w in zip(low, caps, weights)]

    lo_lam, hi_lam = 0.0, 1.0
    while sum(sized(hi_lam)) < total and hi_lam < 1e18:
        hi_lam *= 2
    for _ in range(100):
        mid = (lo_lam + hi_lam) / 2
        lo_lam, hi_lam = (mid, hi_lam) if sum(sized(mid)) <= total else (lo_lam, mid)
    alloc = sized(lo_lam)
    left = total - sum(alloc)
    for i in sorted(range(len(weights)), key=lambda i: -weights[i]):
        if left <= 0:
            break
        if weights[i] > 0 and alloc[i] < caps[i] and lo_lam * weights[i] >= alloc[i] - 1:
            alloc[i] += 1
            left -= 1
    return alloc


class TuneSession:
    """Tunes ``tasks`` for ``target`` on the measurer's device, appending to ``log_path``."""

    def __init__(
        self,
        tasks: list[Task],
        target: dict[str, Any],
        measurer: Measurer,
        log_path: str | os.PathLike[str],
        strategy: str = "ga",
        seed: int = 0,
        batch_hook: Callable[[], bool] | None = None,
        confirm_top: int = 3,
        confirm_rounds: int = 3,
    ) -> None:
        self.tasks = tasks
        self.target = target
        self.measurer = measurer
        self.log_path = log_path
        self.strategy = strategy
        self.seed = seed
        self.should_stop = batch_hook or (lambda: False)
        self.confirm_top = confirm_top
        self.confirm_rounds = confirm_rounds
        self.torn_lines = 0
        records: list[TuneRecord] = []
        if os.path.exists(log_path) and os.path.getsize(log_path) > 0:
            contents = read_log(log_path)
            self.torn_lines = contents.torn_lines
            records = [r for r in contents.records if r.matches(target, measurer.device_key)]
        self._caches = [_cache_of(t, records) for t in tasks]
        self._confirmed = {r.workload for r in records if r.strategy == CONFIRM}

    @property
    def done(self) -> int:
        """Candidates of these tasks the log already holds."""
        return sum(len(c) for c in self._caches)

    def run(self, trials: int, progress: Progress | None = None) -> TuneReport:
        """Tune until the log holds ``trials`` candidates of these tasks (or their spaces run out)."""
        results = [TaskResult(t) for t in self.tasks]
        caches = self._caches
        with LogWriter(self.log_path) as log:
            interrupted = self._defaults(results, caches, log, progress)
            if not interrupted:
                budgets = allocate(
                    [r.weight for r in results],
                    [max(1, len(c)) for c in caches],
                    [max(1, t.space.valid_count() + (t.space.invalid(t.space.default_gene()) is not None)) for t in self.tasks],
                    max(trials, len(self.tasks)),
                )
                for result, budget in zip(results, budgets):
                    result.budget = budget
                order = sorted(range(len(results)), key=lambda i: -results[i].weight)
                for i in order:
                    if results[i].weight == 0:
                        continue  # the default fails: nothing to compare against
                    if self._search(results[i], caches[i], log, progress) or self._confirm(results[i], caches[i], log, progress):
                        interrupted = True
                        break
        for result, cache in zip(results, caches):
            result.trials = len(cache)
        return TuneReport(results, interrupted, self.torn_lines)

    def _record(self, log: LogWriter, task: Task, config: Config, latency: dict | None, error: str | None, strategy: str) -> TuneRecord:
        record = TuneRecord(task.key, task.rule.name, self.target, self.measurer.device_key, config, latency, error, strategy=strategy)
        log.append(record)
        return record

    def _defaults(self, results: list[TaskResult], caches: list[dict[Gene, float]], log: LogWriter, progress: Progress | None) -> bool:
        todo = []
        for result, cache in zip(results, caches):
            gene = result.task.space.default_gene()
            if gene in cache:
                result.default_ms = cache[gene]
            else:
                todo.append((result, cache, gene))
        for start in range(0, len(todo), max(1, self.measurer.batch_size)):
            if self.should_stop():
                return True
            chunk = todo[start: start + self.measurer.batch_size]
            configs = [r.task.space.config(g) for r, _, g in chunk]
            outcomes = self.measurer.measure([(r.task.kernel, c) for (r, _, _), c in zip(chunk, configs)])
            for (result, cache, gene), config, outcome in zip(chunk, configs, outcomes):
                record = self._record(log, result.task, config, outcome.latency, outcome.error, "default")
                cache[gene] = record.cost
                result.default_ms = record.cost
                self._count(result, record, progress)
        for result, cache in zip(results, caches):
            best = min(cache, key=cache.get) if cache else None
            if best is not None and math.isfinite(cache[best]):
                result.best_ms, result.best_knobs = cache[best], result.task.space.config(best)
        return False

    def _count(self, result: TaskResult, record: TuneRecord, progress: Progress | None) -> None:
        cost = record.cost
        result.measured += 1
        result.history.append(cost)
        if not record.ok:
            result.failures += 1
            result.first_error = result.first_error or record.error
        if progress is not None:
            best = min(result.best_ms, cost)
            speedup = result.default_ms / best if math.isfinite(best) and math.isfinite(result.default_ms) else float("nan")
            progress.update(1, workload=result.task.label, best_ms=best, speedup=f"{speedup:.2f}x")

    def _search(self, result: TaskResult, cache: dict[Gene, float], log: LogWriter, progress: Progress | None) -> bool:
        """Spend the task's budget; True if stopped by an interrupt."""
        task = result.task
        seed = (self.seed * 1_000_003) ^ zlib.crc32(task.key.encode())
        strategy = STRATEGIES[self.strategy](task.space, seed)
        while len(cache) < result.budget:
            batch = strategy.propose()
            if not batch:
                break
            new = [g for g in batch if g not in cache]
            for gene in batch:
                if gene in cache:
                    strategy.tell(gene, cache[gene])
            new = new[: result.budget - len(cache)]
            for start in range(0, len(new), self.measurer.batch_size):
                if self.should_stop():
                    return True
                chunk = new[start: start + self.measurer.batch_size]
                configs = [task.space.config(g) for g in chunk]
                outcomes = self.measurer.measure([(task.kernel, c) for c in configs])
                for gene, config, outcome in zip(chunk, configs, outcomes):
                    record = self._record(log, task, config, outcome.latency, outcome.error, strategy.name)
                    cache[gene] = record.cost
                    strategy.tell(gene, record.cost)
                    self._count(result, record, progress)
                    if record.cost < result.best_ms:
                        result.best_ms, result.best_knobs = record.cost, config
        return False

    def _confirm(self, result: TaskResult, cache: dict[Gene, float], log: LogWriter, progress: Progress | None) -> bool:
        """Re-time the default and the ``confirm_top`` best genes side by side; True if interrupted.

        Their medians over the rounds become the task's default and best latency, and the
        confirm records decide which knobs ``compile --tuning-log`` uses (``best_records``).
        """
        task = result.task
        default = task.space.default_gene()
        ranked = sorted((c, g) for g, c in cache.items() if math.isfinite(c) and g != default)
        genes = [default] + [g for _, g in ranked[: self.confirm_top]]
        already = task.key in self._confirmed and result.measured == 0
        if self.confirm_top > 0 and len(genes) > 1 and not already:
            if self.should_stop():
                return True
            configs = [task.space.config(g) for g in genes]
            per_round = self.measurer.measure_rounds([(task.kernel, c) for c in configs], self.confirm_rounds)
            costs: dict[Gene, list[float]] = {g: [] for g in genes}
            for outcomes in per_round:
                for gene, config, outcome in zip(genes, configs, outcomes):
                    record = self._record(log, task, config, outcome.latency, outcome.error, CONFIRM)
                    costs[gene].append(record.cost)
            medians = {g: sorted(c)[(len(c) - 1) // 2] for g, c in costs.items()}
            winner = min(medians, key=medians.get)
            result.default_ms = medians[default]
            if math.isfinite(medians[winner]):
                result.best_ms, result.best_knobs = medians[winner], task.space.config(winner)
        if progress is not None:
            progress.write(
                f"{task.label}: default {result.default_ms:.4g} ms, best {result.best_ms:.4g} ms "
                f"({result.default_ms / result.best_ms:.2f}x) after {len(cache)} trials"
            )
        return False
